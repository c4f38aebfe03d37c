/**
 * Waiting for a task's completion and checking it before anything is
 * decrypted: the completing enclave was one of the requester's verified
 * candidates and is still active in the registry, its EIP-712 signature
 * covers this task, these digests and the CIDs fetched, the downloaded blobs match the signed
 * digests, and the provenance statement describes this task, program and
 * input, and names this enclave's keys and evidence registered for them (not
 * necessarily the evidence the requester verified: an enclave that restarted
 * attests again under a new evidence CID, with the same keys). The provenance envelope's own DSSE signature is not checked again:
 * its bytes are those whose digest the enclave signed in the completion, so
 * they are the enclave's whatever the DSSE signature says (`cloister verify`,
 * which may hold the envelope alone, checks it).
 */
import { getAddress, hexToBytes, type Address, type Client, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { signerKeys } from "../crypto/secp256k1-signers.ts";
import { completionDigest } from "../protocol/completion-digest.ts";
import { statementOfSignedEnvelope, taskPart, type ProvenanceStatement } from "../protocol/provenance.ts";
import { decryptResult, type ResourceUse } from "../protocol/result.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { directCompletionReads, type CompletionReads } from "./completion-reads.ts";
import { CompletionWatcher, type CompletionEvent } from "./completion-watcher.ts";
import type { Policy } from "../attestation/policy.ts";
import { checkReattestedEvidence, type VerifiedEnclave } from "./enclaves.ts";
import { TaskProgramError, TaskVerificationError } from "./errors.ts";
import type { SubmittedTask } from "./submit.ts";

export interface TaskResult {
  taskId: bigint;
  output: Uint8Array;
  /** The program's exact CPU and wall time and output size, from the encrypted result: the public statement has none of them. */
  usage: ResourceUse;
  enclave: VerifiedEnclave;
  provenance: ProvenanceStatement;
  outputCid: string;
  provenanceCid: string;
  completeTransaction: Hex;
  /** The checks made, in order, each a short sentence. */
  checks: string[];
}

export interface AwaitContext {
  reader: Client;
  market: Address;
  registry: Address;
  store: BlobStore;
  pollIntervalMs?: number;
  /** The chain reads of a verification; a client shares them between the tasks of one completion transaction. */
  reads?: CompletionReads;
  /**
   * The requester's policy and the registry's first block: to check evidence the statement names that is not the
   * candidate's (the enclave re-attested). Without it such a statement is refused.
   */
  trust?: { policy: Policy; fromBlock: bigint };
}

/** Waits for one task's completion on its own; a CloisterClient shares one CompletionWatcher between its tasks. */
export function awaitCompletion(ctx: AwaitContext, task: SubmittedTask, timeoutMs: number): Promise<CompletionEvent> {
  return new CompletionWatcher({ reader: ctx.reader, market: ctx.market, pollIntervalMs: ctx.pollIntervalMs }).wait(task.taskId, task.submitBlock, timeoutMs);
}

export async function verifyAndDecrypt(
  ctx: AwaitContext,
  task: SubmittedTask,
  candidates: VerifiedEnclave[],
  event: CompletionEvent,
): Promise<TaskResult> {
  const checks: string[] = [];
  const enclave = candidates.find((c) => c.signer.toLowerCase() === event.enclave.toLowerCase());
  if (!enclave) throw new TaskVerificationError("ENCLAVE_NOT_CANDIDATE", `task ${task.taskId} was completed by ${event.enclave}, which is not one of the enclaves this requester verified`);
  checks.push(`completed by ${enclave.signer}, one of the candidate enclaves whose evidence this client verified`);

  const reads = ctx.reads ?? directCompletionReads(ctx.reader, ctx.registry);
  const record = await reads.enclaveRecord(enclave.signer, event.transactionHash);
  if (!record.active) throw new TaskVerificationError("ENCLAVE_NOT_ACTIVE", `enclave ${enclave.signer} is no longer active in the registry (revoked or expired)`);
  checks.push(`enclave registration active until ${new Date(Number(record.expiry) * 1000).toISOString()}`);

  const signature = (await reads.signatures(event.transactionHash)).get(task.taskId);
  if (signature === undefined) throw new TaskVerificationError("COMPLETION_SIGNATURE_INVALID", `transaction ${event.transactionHash} is not a completeTask or completeTasks call for task ${task.taskId}`);
  const digest = completionDigest(task.binding.chainId, task.binding.market, {
    taskId: task.taskId,
    programDigest: task.spec.programDigest,
    inputDigest: task.spec.inputDigest,
    outputDigest: event.outputDigest,
    provenanceDigest: event.provenanceDigest,
    outputCid: event.outputCid,
    provenanceCid: event.provenanceCid,
  });
  // Recovers the key the first time an enclave is seen and verifies against it afterwards; both accept the same signatures.
  const check = signerKeys.check(hexToBytes(digest), hexToBytes(signature), enclave.signer);
  if (!check.ok) {
    const signedBy = check.recovered === undefined ? "no recoverable secp256k1 key" : getAddress(check.recovered);
    throw new TaskVerificationError("COMPLETION_SIGNATURE_INVALID", `the completion of task ${task.taskId} is signed by ${signedBy}, not by enclave ${enclave.signer}`);
  }
  checks.push("EIP-712 completion signature by the enclave's key over task id, the program, input, output and provenance digests and the result and provenance CIDs");

  const [resultBlob, provenanceBlob] = await Promise.all([ctx.store.get(event.outputCid), ctx.store.get(event.provenanceCid)]);
  if (sha256(resultBlob) !== event.outputDigest) throw new TaskVerificationError("OUTPUT_DIGEST_MISMATCH", `result blob ${event.outputCid} does not match the signed output digest`);
  if (sha256(provenanceBlob) !== event.provenanceDigest) throw new TaskVerificationError("PROVENANCE_DIGEST_MISMATCH", `provenance blob ${event.provenanceCid} does not match the signed provenance digest`);
  checks.push("downloaded result and provenance match their signed digests");

  let statement: ProvenanceStatement;
  try {
    statement = statementOfSignedEnvelope(provenanceBlob);
  } catch (cause) {
    throw new TaskVerificationError("PROVENANCE_INVALID", `provenance of task ${task.taskId} is invalid: ${(cause as Error).message}`, { cause });
  }
  const p = statement.predicate;
  const t = taskPart(statement);
  const inputDigest = task.spec.inputDigest.slice(2).toLowerCase();
  const mismatch =
    !t || p.job.id !== task.taskId.toString() ? "task id"
    : t.program.digest !== task.spec.programDigest.toLowerCase() ? "program digest"
    : !p.inputs.some((i) => i.digest.sha256 === inputDigest) ? "input digest"
    : statement.subject[0]?.digest.sha256 !== event.outputDigest.slice(2).toLowerCase() ? "output digest"
    : p.enclave.signer.toLowerCase() !== enclave.signer.toLowerCase() ? "enclave"
    : p.enclave.hpkePublicKey.toLowerCase() !== enclave.hpkePublicKey.toLowerCase() ? "enclave HPKE key"
    : p.enclave.provenanceKey !== enclave.provenanceKey ? "enclave provenance key"
    : undefined;
  if (mismatch) throw new TaskVerificationError("PROVENANCE_INVALID", `provenance of task ${task.taskId} names a different ${mismatch} than the task`);
  checks.push("in-toto provenance, authenticated by the completion signature over its digest, names this task, program, input, output and enclave keys");
  if (p.enclave.evidenceCid !== enclave.evidenceCid) {
    if (!ctx.trust) throw new TaskVerificationError("PROVENANCE_INVALID", `provenance of task ${task.taskId} names evidence ${p.enclave.evidenceCid}, not the ${enclave.evidenceCid} this client verified, and no policy was given to check it`);
    const outcome = await checkReattestedEvidence({ reader: ctx.reader, registry: ctx.registry, store: ctx.store, ...ctx.trust }, enclave, p.enclave.evidenceCid);
    if ("reason" in outcome) throw new TaskVerificationError("PROVENANCE_INVALID", `provenance of task ${task.taskId} names evidence the requester cannot accept: ${outcome.reason}`);
    checks.push(`the evidence the provenance names, ${p.enclave.evidenceCid}, is a registration of the same enclave key, verified under this client's policy`);
  }

  const decrypted = await decryptResult(task.resultKey.privateKey, task.binding, resultBlob);
  if (decrypted.outcome === "error") throw new TaskProgramError(task.taskId, decrypted.error.code, decrypted.error.message, decrypted.usage);
  checks.push("result decrypted with the requester's key for this task");
  return {
    taskId: task.taskId,
    output: decrypted.output,
    usage: decrypted.usage,
    enclave,
    provenance: statement,
    outputCid: event.outputCid,
    provenanceCid: event.provenanceCid,
    completeTransaction: event.transactionHash,
    checks,
  };
}
