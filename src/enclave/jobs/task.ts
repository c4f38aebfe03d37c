/**
 * The marketplace task, the first job kind. authorize checks everything the
 * host handed over against the on-chain spec (digests, envelope, candidates)
 * and unwraps the data key, which opens only for this task, program and
 * result key: the requester's authorization. execute decrypts the input, runs
 * the program, and encrypts the result to the requester; the runtime signs
 * provenance, and anchor signs TaskMarket's Completion.
 *
 * Integrity failures (digests, envelope, wrapped key, input ciphertext) throw
 * EnclaveError: the host must not complete the task. Program failures (throws,
 * limits) become an error record encrypted to the requester, and the task
 * completes normally; only the requester learns that it failed: the outcome
 * has no error and no resource use, and the public provenance statement none
 * either.
 */
import { getAddress, isAddressEqual, type Hex } from "viem";
import { openStream } from "../../crypto/aead-stream.ts";
import { fromHex } from "../../crypto/bytes.ts";
import { isCryptoError } from "../../crypto/errors.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { openWith } from "../../crypto/hpke.ts";
import { taskInputAad, taskKeyInfo, type TaskKeyTerms } from "../../protocol/binding.ts";
import { completionDigest } from "../../protocol/completion-digest.ts";
import { encryptResult, type ResultRecord } from "../../protocol/result.ts";
import { decodeInlineInput, type TaskBinding, type TaskEnvelope, type TaskLimits } from "../../protocol/task.ts";
import { parseEnvelope } from "../envelope.ts";
import { EnclaveError } from "../errors.ts";
import { runJsProgram } from "../executors/js-isolate.ts";
import { ProgramError } from "../executors/program-error.ts";
import { isWasmProgram, runWasmProgram } from "../executors/wasm.ts";
import type { EnclaveContext, JobModule } from "./job-module.ts";
import type { TaskJobParams } from "./params.ts";
import { refuseTask } from "./task-refusal.ts";

/** What authorize hands to execute: the parsed envelope, the requester's result key and the unwrapped data key. */
export interface AuthorizedTask {
  envelope: TaskEnvelope;
  resultKey: Uint8Array;
  dataKey: Uint8Array;
}

export const taskJob: JobModule<"task", TaskJobParams, AuthorizedTask> = {
  kind: "task",
  jobId: (params) => params.binding.taskId,
  authorize: authorizeTask,
  async execute(_ctx, params, { envelope, resultKey, dataKey }) {
    const plaintext = decryptInput(params, dataKey);
    const limits = effectiveLimits(envelope.limits, params.spec.memoryMb);
    const record = await execute(params.program, plaintext, limits);
    plaintext.fill(0);
    const result = await encryptResult(resultKey, params.binding, record);
    const { binding, spec } = params;
    return {
      outputs: [{ name: "result", bytes: result }],
      inputs: [{ name: "input", digest: spec.inputDigest }],
      resourceUse: null,
      error: null,
      kindPredicate: {
        chainId: binding.chainId.toString(),
        market: getAddress(binding.market),
        program: { digest: spec.programDigest.toLowerCase() as Hex },
        envelope: { digest: spec.envelopeDigest.toLowerCase() as Hex },
        limits: { ...limits },
      },
    };
  },
  async anchor(ctx, { binding, spec }, run) {
    const output = run.outputs[0]!;
    // The same signature as signTypedData over the Completion: sign(hashTypedData), with the digest computed directly.
    const hash = completionDigest(binding.chainId, binding.market, {
      taskId: binding.taskId,
      programDigest: spec.programDigest,
      inputDigest: spec.inputDigest,
      outputDigest: output.digest,
      provenanceDigest: run.provenanceDigest,
      outputCid: output.cid,
      provenanceCid: run.provenanceCid,
    });
    return { type: "TaskMarket.Completion", signature: await ctx.keys.account.sign({ hash }) };
  },
  refuse: refuseTask,
};

/**
 * Every check before the program runs: the blobs against the spec, the result key, the data key. Throws the
 * EnclaveError of the first that fails (task-refusal.ts tells whether it is the requester's).
 */
export async function authorizeTask(ctx: EnclaveContext, params: TaskJobParams): Promise<AuthorizedTask> {
  const envelope = checkInputs(ctx, params);
  const resultKey = checkResultKey(envelope);
  const dataKey = await unwrapDataKey(ctx, params.binding, envelope, { programDigest: params.spec.programDigest, resultKey });
  return { envelope, resultKey, dataKey };
}

/** authorize, then the input ciphertext: every check a task must pass to run. */
export async function openTask(ctx: EnclaveContext, params: TaskJobParams): Promise<{ envelope: TaskEnvelope; resultKey: Uint8Array; plaintext: Uint8Array }> {
  const { envelope, resultKey, dataKey } = await authorizeTask(ctx, params);
  return { envelope, resultKey, plaintext: decryptInput(params, dataKey) };
}

function decryptInput(params: TaskJobParams, dataKey: Uint8Array): Uint8Array {
  const { binding } = params;
  try {
    return openStream(dataKey, params.input, { aad: taskInputAad(binding), label: "input ciphertext" });
  } catch (e) {
    if (!isCryptoError(e)) throw e;
    throw new EnclaveError("INPUT_DECRYPTION_FAILED", `${e.message} (task ${binding.taskId}); the task cannot run on this input`, { cause: e });
  } finally {
    dataKey.fill(0);
  }
}

/**
 * The limits the program runs under: the envelope's, with no more memory than the on-chain spec names. The
 * market matched the spec's memoryMb against the node's offer, and the node sized its concurrency on its
 * offers (host/capacity.ts), so a larger figure in the envelope must not reach the isolate.
 */
function effectiveLimits(limits: TaskLimits, specMemoryMb: number): TaskLimits {
  return limits.memoryMb <= specMemoryMb ? limits : { ...limits, memoryMb: specMemoryMb };
}

/** Every blob the host relayed must be the one the on-chain spec names. */
function checkInputs(ctx: EnclaveContext, params: TaskJobParams): TaskEnvelope {
  const { binding, spec } = params;
  const task = `task ${binding.taskId}`;
  mustMatch(sha256(params.envelope), spec.envelopeDigest, "ENVELOPE_DIGEST_MISMATCH", `${task}: the envelope's SHA-256`);
  mustMatch(sha256(params.program), spec.programDigest, "PROGRAM_DIGEST_MISMATCH", `${task}: the program's SHA-256`);
  mustMatch(sha256(params.input), spec.inputDigest, "INPUT_DIGEST_MISMATCH", `${task}: the input ciphertext's SHA-256`);
  const envelope = parseEnvelope(params.envelope);
  if (envelope.taskId !== binding.taskId.toString()) {
    throw new EnclaveError("TASK_MISMATCH", `the envelope is for task ${envelope.taskId}, not ${task}: it belongs to another task`);
  }
  mustMatch(envelope.program.digest, spec.programDigest, "TASK_MISMATCH", `${task}: the envelope's program digest`);
  mustMatch(envelope.input.digest, spec.inputDigest, "TASK_MISMATCH", `${task}: the envelope's input digest`);
  checkInlineInput(envelope, task);
  const me = ctx.keys.account.address;
  if (spec.candidates.length > 0 && !spec.candidates.some((c) => isAddressEqual(c, me))) {
    throw new EnclaveError("NOT_A_CANDIDATE", `${task} does not list this enclave (${me}) among its candidates`);
  }
  return envelope;
}

/**
 * An inline input must itself hash to the digest. The bytes decrypted are the ones the host relayed
 * (params.input), already checked against spec.inputDigest above; with this check they are also the
 * envelope's inline bytes, whatever else the host passes.
 */
function checkInlineInput(envelope: TaskEnvelope, task: string): void {
  if (!("inline" in envelope.input)) return;
  const actual = sha256(decodeInlineInput(envelope.input));
  if (actual.toLowerCase() !== envelope.input.digest.toLowerCase()) {
    throw new EnclaveError(
      "INPUT_DIGEST_MISMATCH",
      `${task}: the envelope's inline input ciphertext's SHA-256 is ${actual}, but its input digest (and the task spec) say ${envelope.input.digest}: ` +
        "the requester published an inconsistent envelope; the task cannot run",
    );
  }
}

function checkResultKey(envelope: TaskEnvelope): Uint8Array {
  try {
    const key = fromHex(envelope.resultKey);
    if (key.length === 32) return key;
  } catch {
    // reported below
  }
  throw new EnclaveError("RESULT_KEY_INVALID", `the envelope's resultKey must be a 32-byte X25519 public key in hex, got "${envelope.resultKey.slice(0, 20)}…"`);
}

async function unwrapDataKey(ctx: EnclaveContext, binding: TaskBinding, envelope: TaskEnvelope, terms: TaskKeyTerms): Promise<Uint8Array> {
  const me = ctx.keys.account.address;
  const wrapped = envelope.wrappedKeys.find((w) => isAddressEqual(w.enclave, me));
  if (!wrapped) {
    throw new EnclaveError("NOT_A_CANDIDATE", `task ${binding.taskId} has no data key wrapped to this enclave (${me}); it cannot run here`);
  }
  try {
    const key = await openWith(ctx.keys.hpke.privateKey, fromHex(wrapped.enc), fromHex(wrapped.ciphertext), { info: taskKeyInfo(binding, terms) });
    if (key.length !== 32) throw new EnclaveError("KEY_UNWRAP_FAILED", `the data key of task ${binding.taskId} is ${key.length} bytes, not 32`);
    return key;
  } catch (e) {
    if (e instanceof EnclaveError) throw e;
    throw new EnclaveError(
      "KEY_UNWRAP_FAILED",
      `the data key wrapped to this enclave did not open for task ${binding.taskId} on chain ${binding.chainId} and market ${binding.market}: ` +
        "it was wrapped for another task, another program, another result key or another enclave key, or altered",
      { cause: e },
    );
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A program starting with the WebAssembly magic `\0asm` runs as WASM; anything else as a JS module. */
async function execute(program: Uint8Array, input: Uint8Array, limits: TaskLimits): Promise<ResultRecord> {
  let source = "";
  const wasm = isWasmProgram(program);
  if (!wasm) {
    try {
      source = strictUtf8.decode(program);
    } catch {
      return failed(new ProgramError("PROGRAM_INVALID", "program is neither WebAssembly (starting with \\0asm) nor UTF-8 text: a JS program must be an ES module's source"), 0);
    }
  }
  const started = performance.now();
  try {
    const run = wasm ? await runWasmProgram(program, input, limits) : await runJsProgram(source, input, limits);
    return { outcome: "ok", output: run.output, usage: { wallMs: round(run.wallMs), cpuMs: round(run.cpuMs), outputBytes: run.output.length } };
  } catch (e) {
    if (e instanceof ProgramError) return failed(e, performance.now() - started);
    throw e;
  }
}

function failed(e: ProgramError, wallMs: number): ResultRecord {
  return { outcome: "error", error: { code: e.code, message: e.message }, usage: { wallMs: round(wallMs), cpuMs: round(e.cpuMs ?? 0), outputBytes: 0 } };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function mustMatch(actual: Hex, expected: Hex, code: "ENVELOPE_DIGEST_MISMATCH" | "PROGRAM_DIGEST_MISMATCH" | "INPUT_DIGEST_MISMATCH" | "TASK_MISMATCH", what: string): void {
  if (actual.toLowerCase() !== expected.toLowerCase()) {
    throw new EnclaveError(code, `${what} is ${actual}, but the task spec says ${expected}: the host relayed the wrong or an altered blob`);
  }
}
