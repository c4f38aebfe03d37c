/** Builds a task the way a requester would (real HPKE and AEAD), for enclave tests. */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256, type Address, type Hex } from "viem";
import { generateDataKey, sealStream } from "../../src/crypto/aead-stream.ts";
import { fromHex, toHex } from "../../src/crypto/bytes.ts";
import { generateHpkeKeyPair, sealTo } from "../../src/crypto/hpke.ts";
import { taskInputAad, taskKeyInfo } from "../../src/protocol/binding.ts";
import { defaultTaskLimits, inlineInputRef, type TaskBinding, type TaskEnvelope, type TaskLimits, type TaskSpec } from "../../src/protocol/task.ts";
import type { EnclaveIdentity, JobOutcome } from "../../src/enclave/call-gate.ts";
import type { EnclaveClient } from "../../src/enclave/client.ts";
import type { TaskJobParams } from "../../src/enclave/jobs/params.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";

/** A task job's params and the evidence CID its provenance names: what the host hands the job seam. */
export type RunTaskParams = TaskJobParams & { evidenceCid: string };

/** A task's outcome as completeTask takes it. */
export function taskRunOf(outcome: JobOutcome) {
  assert.equal(outcome.kind, "task");
  assert.equal(outcome.outputs.length, 1);
  assert.equal(outcome.anchor.type, "TaskMarket.Completion");
  const out = outcome.outputs[0]!;
  return {
    result: out.bytes,
    outputDigest: out.digest,
    outputCid: out.cid,
    provenance: outcome.provenance.bytes,
    provenanceDigest: outcome.provenance.digest,
    provenanceCid: outcome.provenance.cid,
    signature: outcome.anchor.signature,
    job: outcome,
  };
}

/** Runs a task through the job seam. */
export async function runTask(enclave: Pick<EnclaveClient, "runJob">, { evidenceCid, ...params }: RunTaskParams, opts?: { timeoutMs?: number }) {
  return taskRunOf(await enclave.runJob({ kind: "task", params, evidenceCid }, opts));
}

/** Asks the enclave for a task's refusal through the job seam. */
export function refuseTask(enclave: Pick<EnclaveClient, "refuseJob">, { evidenceCid: _, attempt, ...params }: RunTaskParams & { attempt: number }) {
  return enclave.refuseJob({ kind: "task", params, attempt });
}

export const market: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

export function bindingFor(taskId: bigint): TaskBinding {
  return { chainId: 31337n, market, taskId };
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `cloister-${prefix}-`));
}

export interface TaskOptions {
  binding: TaskBinding;
  program: string;
  input: Uint8Array;
  limits?: Partial<TaskLimits>;
  /** Wrap the data key under this binding instead (replay into another task). */
  wrapBinding?: TaskBinding;
  /** Encrypt the input under this binding instead. */
  inputBinding?: TaskBinding;
  /** Carry the encrypted input inline in the envelope (base64) instead of naming it by CID. */
  inline?: boolean;
  /** Terms of the on-chain spec to use instead of the defaults (memoryMb defaults to the envelope's, at least 64). */
  spec?: Partial<TaskSpec>;
  /** Wrap the data key for this program instead of the task's (a host that swaps the program). */
  wrapProgram?: Uint8Array;
  /** Wrap the data key for this result key instead of the envelope's (a host that swaps the result key). */
  wrapResultKey?: { publicKey: Uint8Array };
  /** Replace the envelope's input object with this one as is (malformed envelopes). */
  rawInputRef?: (encryptedInput: Uint8Array, digest: Hex) => unknown;
}

export async function makeTask(enclave: EnclaveIdentity, opts: TaskOptions) {
  const requester = await generateHpkeKeyPair();
  const dataKey = generateDataKey();
  const program = new TextEncoder().encode(opts.program);
  const input = sealStream(dataKey, opts.input, { aad: taskInputAad(opts.inputBinding ?? opts.binding), chunkSize: 1024 });
  const wrapped = await sealTo(fromHex(enclave.hpkePublicKey), dataKey, {
    info: taskKeyInfo(opts.wrapBinding ?? opts.binding, { programDigest: sha256(opts.wrapProgram ?? program), resultKey: (opts.wrapResultKey ?? requester).publicKey }),
  });
  const envelopeObj: TaskEnvelope = {
    version: 1,
    taskId: opts.binding.taskId.toString(),
    program: { cid: "bafy-program", digest: sha256(program) },
    input: opts.inline ? inlineInputRef(input, sha256(input)) : { cid: "bafy-input", digest: sha256(input) },
    resultKey: toHex(requester.publicKey),
    wrappedKeys: [{ enclave: enclave.signer, enc: toHex(wrapped.enc), ciphertext: toHex(wrapped.ciphertext) }],
    limits: { ...defaultTaskLimits, cpuTimeMs: 2_000, timeoutMs: 2_000, ...opts.limits },
  };
  const envelopeJson = opts.rawInputRef ? { ...envelopeObj, input: opts.rawInputRef(input, sha256(input)) } : envelopeObj;
  const envelope = new TextEncoder().encode(JSON.stringify(envelopeJson));
  const spec: TaskSpec = {
    requester: "0x000000000000000000000000000000000000beef",
    token: "0x0000000000000000000000000000000000000000",
    maxPrice: 10n ** 16n,
    programDigest: sha256(program),
    inputDigest: sha256(input),
    envelopeDigest: sha256(envelope),
    envelopeCid: "bafy-envelope",
    candidates: [enclave.signer],
    cpuMillis: 1000,
    memoryMb: Math.max(64, envelopeObj.limits.memoryMb),
    duration: 5,
    teeTypes: 7,
    category: 0,
    deadlineMultiple: 1,
    maxAttempts: 1,
    ...opts.spec,
  };
  const params: RunTaskParams = { binding: opts.binding, spec, envelope, program, input, evidenceCid: "bafy-evidence" };
  return { params, requester, envelope: envelopeObj };
}

export function withDigests(params: RunTaskParams, patch: Partial<Pick<RunTaskParams, "program" | "input" | "envelope">>): RunTaskParams {
  const next = { ...params, ...patch };
  const d = (b: Uint8Array): Hex => sha256(b);
  return { ...next, spec: { ...next.spec, programDigest: d(next.program), inputDigest: d(next.input), envelopeDigest: d(next.envelope) } };
}

/** Asserts that `p` rejects with an EnclaveError of `code` (and a message matching `match`). */
export async function rejectsWith(p: Promise<unknown>, code: string, match?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof EnclaveError, `expected EnclaveError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return true;
  });
}
