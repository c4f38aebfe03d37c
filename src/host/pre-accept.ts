/**
 * What a node checks before it accepts a task, so that it does not post a
 * deposit for a task it can tell is unrunnable: the envelope is fetchable,
 * is the one the spec names (its SHA-256 is the spec's envelopeDigest),
 * parses, is for this task, program and input, wraps a data key to this
 * node's enclave, and asks for no more memory and time than the spec (which
 * the market checks against the node's offer). A task that fails any of these
 * is skipped. What only the enclave can check (that the wrapped key opens,
 * that the input decrypts) it refuses after the accept (refusal.ts).
 */
import { isAddressEqual, type Address } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { parseTaskEnvelope, TaskEnvelopeError, type TaskEnvelope, type TaskSpec } from "../protocol/task.ts";
import { StorageError, type StorageErrorCode } from "../storage/blob-store.ts";

const unfetchable = new Set<StorageErrorCode>(["BLOB_NOT_FOUND", "INVALID_CID", "BLOB_TOO_LARGE", "BLOB_CORRUPTED"]);

/** The envelope as fetched and parsed, for the run after the accept. */
export interface CheckedEnvelope {
  bytes: Uint8Array;
  envelope: TaskEnvelope;
}

export type PreAcceptOutcome = { ok: true; checked: CheckedEnvelope } | { ok: false; reason: string };

export interface PreAcceptContext {
  /** Fetches a blob (with the node's retries and size bound); throws StorageError when it cannot. */
  fetch(cid: string): Promise<Uint8Array>;
  /** This node's enclave. */
  enclave: Address;
}

export async function checkBeforeAccept(ctx: PreAcceptContext, taskId: bigint, spec: TaskSpec): Promise<PreAcceptOutcome> {
  const skip = (reason: string): PreAcceptOutcome => ({ ok: false, reason: `not accepted: ${reason}` });
  let bytes: Uint8Array;
  try {
    bytes = await ctx.fetch(spec.envelopeCid);
  } catch (e) {
    // The envelope is not (validly) there: the requester's doing. An unreachable store is the node's own
    // transient trouble and is thrown, so the task is handled again.
    if (e instanceof StorageError && unfetchable.has(e.code)) return skip(`its envelope ${spec.envelopeCid} could not be fetched (${e.code}: ${e.message})`);
    throw e;
  }
  const digest = sha256(bytes);
  if (digest.toLowerCase() !== spec.envelopeDigest.toLowerCase()) {
    return skip(`its envelope's SHA-256 is ${digest}, but the spec says ${spec.envelopeDigest}`);
  }
  let envelope: TaskEnvelope;
  try {
    envelope = parseTaskEnvelope(bytes);
  } catch (e) {
    if (e instanceof TaskEnvelopeError) return skip(`its envelope is malformed (${e.message})`);
    throw e;
  }
  if (envelope.taskId !== taskId.toString()) return skip(`its envelope is for task ${envelope.taskId}`);
  if (envelope.program.digest.toLowerCase() !== spec.programDigest.toLowerCase()) return skip("its envelope names another program digest than the spec");
  if (envelope.input.digest.toLowerCase() !== spec.inputDigest.toLowerCase()) return skip("its envelope names another input digest than the spec");
  if (!envelope.wrappedKeys.some((w) => isAddressEqual(w.enclave, ctx.enclave))) return skip(`its envelope wraps no data key to this node's enclave ${ctx.enclave}`);
  const { memoryMb, timeoutMs } = envelope.limits;
  if (memoryMb > spec.memoryMb) return skip(`its envelope asks for ${memoryMb} MiB, more than the ${spec.memoryMb} MiB the spec (and so the offer) covers`);
  if (timeoutMs > spec.duration * 1000) return skip(`its envelope allows ${timeoutMs} ms of wall time, more than the spec's ${spec.duration} s`);
  return { ok: true, checked: { bytes, envelope } };
}
