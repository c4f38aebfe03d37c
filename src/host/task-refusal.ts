/**
 * When the enclave could not run an accepted task: ask it for a signed
 * refusal (it signs one only when the task's own inputs are to blame) and end
 * the attempt on chain with it, so that the node gets its deposit back and is
 * paid for the attempt instead of letting the deadline forfeit the deposit.
 */
import type { Address } from "viem";
import { refuseTask } from "../chain/actions/refuse-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import { isEnclaveError, type EnclaveError } from "../enclave/errors.ts";
import { refusalReasonName } from "../protocol/refusal.ts";
import { taskCommitment, type Assignment } from "../protocol/task.ts";
import { errorDetails, type HostLog } from "./log.ts";
import type { NodeMarketBatches } from "./market-batches.ts";
import { refuseTaskJob, type RunTaskParams } from "./task-job.ts";
import type { SubmittedTask } from "./task-watcher.ts";

export interface RefusalContext {
  writer: WriterClient;
  market: Address;
  batches: NodeMarketBatches;
  enclave: EnclaveClient;
  log: HostLog;
  retrying<T>(what: string, operation: () => Promise<T>): Promise<T>;
}

/**
 * Refuses the task on chain when the enclave proves `failure` the task's own; true when the attempt was
 * handled that way (refused, or the refusal was sent and reverted, which is logged), false when there is no
 * refusal to send (the failure may be the host's, or the attempt is no longer this enclave's).
 */
export async function refuseIfUnrunnable(
  ctx: RefusalContext,
  task: SubmittedTask,
  assignment: Assignment,
  params: RunTaskParams,
  failure: EnclaveError,
): Promise<boolean> {
  const taskId = task.taskId.toString();
  const record = await ctx.retrying(`readTask ${taskId}`, () => ctx.batches.readTask(task.taskId));
  // The attempt's number is signed; the commitment says the current attempt is this assignment's.
  if (record.status !== "Accepted" || record.commitment !== taskCommitment(task.spec, assignment)) return false;
  let refusal;
  try {
    refusal = await refuseTaskJob(ctx.enclave, params, record.attempt);
  } catch (e) {
    if (isEnclaveError(e) && e.code === "REFUSAL_UNFOUNDED") return false;
    throw e;
  }
  try {
    const tx = await ctx.retrying(`refuseTask ${taskId}`, () =>
      refuseTask(ctx.writer, ctx.market, { taskId: task.taskId, spec: task.spec, assignment, reason: refusal.reason, signature: refusal.signature }),
    );
    ctx.log.emit({
      type: "task-refused",
      taskId,
      reason: refusalReasonName(refusal.reason) ?? String(refusal.reason),
      code: failure.code,
      message: failure.message,
      transactionHash: tx.hash,
      gasUsed: tx.gasUsed.toString(),
    });
  } catch (e) {
    const revert = decodeContractRevert(e);
    if (!revert) throw e;
    ctx.log.emit({ type: "task-failed", taskId, code: revert.code, message: `${failure.code}: ${failure.message}; its refusal reverted: ${revert.message}`, ...errorDetails(revert) });
  }
  return true;
}
