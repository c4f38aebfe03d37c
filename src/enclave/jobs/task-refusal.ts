/**
 * The enclave's refusal of a task its own inputs make unrunnable (the
 * requester's fault), signed so that the node can end the attempt on chain
 * with its deposit instead of letting the deadline take it.
 *
 * A refusal pays the node, so it must not be obtainable by a host that feeds
 * the enclave wrong bytes. The enclave signs only when every byte it blames
 * is authenticated: the envelope by the spec's envelopeDigest, or (when that
 * digest is what fails) by the spec's envelopeCid recomputed from the bytes;
 * the program and input by the spec's digests, or by the envelope's CIDs
 * recomputed from the bytes (src/storage/unixfs-profile.ts). A failure the
 * host could have caused (bytes that match neither) gets no refusal.
 */
import { isAddressEqual } from "viem";
import { CID } from "multiformats/cid";
import { sha256 } from "../../crypto/sha256.ts";
import { refusalDigest, refusalReasons, type RefusalReason } from "../../protocol/refusal.ts";
import { decodeInlineInput, parseTaskEnvelope, taskSpecHash, type TaskEnvelope } from "../../protocol/task.ts";
import { cidOfBytes } from "../../storage/unixfs-profile.ts";
import { EnclaveError } from "../errors.ts";
import type { EnclaveContext, JobRefusal } from "./job-module.ts";
import type { TaskJobParams } from "./params.ts";
import { openTask } from "./task.ts";

export async function refuseTask(ctx: EnclaveContext, params: TaskJobParams, attempt: number): Promise<JobRefusal> {
  const task = `task ${params.binding.taskId}`;
  let failure: EnclaveError;
  try {
    const opened = await openTask(ctx, params);
    opened.plaintext.fill(0);
    throw new EnclaveError("REFUSAL_UNFOUNDED", `${task} opens and can run: there is nothing to refuse`);
  } catch (e) {
    if (!(e instanceof EnclaveError) || e.code === "REFUSAL_UNFOUNDED") throw e;
    failure = e;
  }
  const reason = await requesterFault(ctx, params, failure);
  if (!reason) {
    throw new EnclaveError(
      "REFUSAL_UNFOUNDED",
      `${task} failed with ${failure.code}, but the bytes relayed are not the ones the task names, so the failure may be the host's: ` +
        "relay the blobs at the task's CIDs and run it again",
    );
  }
  const code = refusalReasons[reason];
  const hash = refusalDigest(params.binding.chainId, params.binding.market, {
    taskId: params.binding.taskId,
    // The spec the checks above were made against: the host cannot get a refusal for a spec it made up.
    specHash: taskSpecHash(params.spec),
    attempt,
    reason: code,
  });
  return { reason: code, failure: { code: failure.code, message: failure.message }, signature: await ctx.keys.account.sign({ hash }) };
}

/** The reason to refuse, when the task's own (authenticated) inputs caused `failure`; undefined otherwise. */
async function requesterFault(ctx: EnclaveContext, params: TaskJobParams, failure: EnclaveError): Promise<RefusalReason | undefined> {
  const { spec, binding } = params;
  if (!same(sha256(params.envelope), spec.envelopeDigest)) {
    return (await isCidOf(spec.envelopeCid, params.envelope)) ? "ENVELOPE_DIGEST_MISMATCH" : undefined;
  }
  let envelope: TaskEnvelope;
  try {
    envelope = parseTaskEnvelope(params.envelope);
  } catch {
    return "MALFORMED_ENVELOPE";
  }
  if (envelope.taskId !== binding.taskId.toString() || !same(envelope.program.digest, spec.programDigest) || !same(envelope.input.digest, spec.inputDigest)) {
    return "TASK_MISMATCH";
  }
  if (!same(sha256(params.program), spec.programDigest)) {
    return (await isCidOf(envelope.program.cid, params.program)) ? "PROGRAM_DIGEST_MISMATCH" : undefined;
  }
  const input = envelope.input;
  if ("inline" in input && !same(sha256(decodeInlineInput(input)), input.digest)) return "INPUT_DIGEST_MISMATCH";
  if (!same(sha256(params.input), spec.inputDigest)) {
    return "cid" in input && (await isCidOf(input.cid, params.input)) ? "INPUT_DIGEST_MISMATCH" : undefined;
  }
  // Every blob is the task's own: what failed after these checks is the requester's.
  switch (failure.code) {
    case "RESULT_KEY_INVALID":
      return "RESULT_KEY_INVALID";
    case "KEY_UNWRAP_FAILED":
      return "KEY_UNWRAP_FAILED";
    case "INPUT_DECRYPTION_FAILED":
      return "INPUT_DECRYPTION_FAILED";
    case "NOT_A_CANDIDATE":
      // No key wrapped to an enclave the spec names is the requester's; an open task not wrapped to this
      // enclave is one its node should not have accepted.
      return spec.candidates.some((c) => isAddressEqual(c, ctx.keys.account.address)) ? "KEY_UNWRAP_FAILED" : undefined;
    default:
      return undefined;
  }
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

async function isCidOf(cid: string, bytes: Uint8Array): Promise<boolean> {
  let named: CID;
  try {
    named = CID.parse(cid.trim());
  } catch {
    return false;
  }
  return named.equals(await cidOfBytes(bytes));
}
