/**
 * One task on one node: accept it on chain, relay its blobs from IPFS into
 * the enclave, publish what the enclave returns, and relay the enclave's
 * signed completion to the chain. The host handles ciphertext only.
 */
import type { Address } from "viem";
import { acceptTask } from "../chain/actions/accept-task.ts";
import { completeTask } from "../chain/actions/complete-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import type { TaskEnvelope } from "../protocol/task.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { HostLog } from "./log.ts";
import type { SubmittedTask } from "./task-watcher.ts";

/** Blobs a node is willing to relay per task (program, input, envelope). */
const MAX_BLOB_BYTES = 64 * 1024 * 1024;

export interface TaskHandlerContext {
  writer: WriterClient;
  market: Address;
  chainId: bigint;
  store: BlobStore;
  enclave: EnclaveClient;
  evidenceCid: string;
  log: HostLog;
  /** Serializes this operator's transactions: concurrent sends from one account would race for nonces. */
  sendSerially: <T>(send: () => Promise<T>) => Promise<T>;
}

export async function handleTask(ctx: TaskHandlerContext, task: SubmittedTask): Promise<void> {
  const taskId = task.taskId.toString();
  const signer = ctx.enclave.identity.signer;
  ctx.log.emit({ type: "task-seen", taskId });
  const candidates = task.spec.candidates.map((c) => c.toLowerCase());
  if (candidates.length > 0 && !candidates.includes(signer.toLowerCase())) {
    ctx.log.emit({ type: "task-skipped", taskId, reason: "this node's enclave is not a candidate" });
    return;
  }
  try {
    const accepted = await ctx.sendSerially(() => acceptTask(ctx.writer, ctx.market, { taskId: task.taskId, spec: task.spec, enclave: signer }));
    ctx.log.emit({ type: "task-accepted", taskId, transactionHash: accepted.hash, gasUsed: accepted.gasUsed.toString() });
  } catch (error) {
    const revert = decodeContractRevert(error);
    // Another node got there first, or the task was cancelled: nothing to do.
    if (revert && ["TaskNotOpen", "DeadlinePassed"].includes(revert.errorName)) {
      ctx.log.emit({ type: "task-skipped", taskId, reason: revert.message });
      return;
    }
    throw error;
  }

  try {
    const envelope = await ctx.store.get(task.spec.envelopeCid, { maxBytes: MAX_BLOB_BYTES });
    const parsed = JSON.parse(new TextDecoder().decode(envelope)) as Pick<TaskEnvelope, "program" | "input">;
    const [program, input] = await Promise.all([
      ctx.store.get(parsed.program.cid, { maxBytes: MAX_BLOB_BYTES }),
      ctx.store.get(parsed.input.cid, { maxBytes: MAX_BLOB_BYTES }),
    ]);
    const run = await ctx.enclave.runTask({
      binding: { chainId: ctx.chainId, market: ctx.market, taskId: task.taskId },
      spec: task.spec,
      envelope,
      program,
      input,
      evidenceCid: ctx.evidenceCid,
    });
    const [outputCid, provenanceCid] = await Promise.all([ctx.store.put(run.result), ctx.store.put(run.provenance)]);
    ctx.log.emit({ type: "task-executed", taskId, outcome: run.outcome, outputCid, provenanceCid });
    const completed = await ctx.sendSerially(() => completeTask(ctx.writer, ctx.market, {
      taskId: task.taskId,
      spec: task.spec,
      outputDigest: run.outputDigest,
      provenanceDigest: run.provenanceDigest,
      outputCid,
      provenanceCid,
      signature: run.signature,
    }));
    ctx.log.emit({ type: "task-completed", taskId, transactionHash: completed.hash, gasUsed: completed.gasUsed.toString() });
  } catch (error) {
    const e = error as Error & { code?: string };
    // The enclave refused the task (a digest, key or ciphertext did not check out) or a relay step
    // failed: the task stays accepted and unpaid, and the requester reclaims it after the deadline.
    ctx.log.emit({ type: "task-failed", taskId, code: e.code ?? "INTERNAL", message: e.message });
  }
}
