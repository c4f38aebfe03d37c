import { parseEventLogs, type Address } from "viem";
import type { Assignment, TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface ReopenTaskParams {
  taskId: bigint;
  spec: TaskSpec;
  /** The missed attempt's assignment (its TaskAccepted event). */
  assignment: Assignment;
}

/**
 * Past an accepted attempt's deadline: forfeits the operator's deposit to the
 * requester and reopens the task, or refunds it after its last attempt.
 * Anyone may send it. It is checked against the pending block: whether a
 * deadline has passed depends on the next block's time, and on a chain that
 * mines only on demand the latest block can be arbitrarily old.
 */
export async function reopenTask(client: WriterClient, market: Address, params: ReopenTaskParams): Promise<TxResult & { outcome: "reopened" | "refunded" }> {
  const tx = await writeContractTransaction(client, "reopenTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "reopenTask",
    args: [params.taskId, params.spec, params.assignment],
  }, { blockTag: "pending" });
  const reopened = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "TaskReopened" }).length > 0;
  return { ...tx, outcome: reopened ? "reopened" : "refunded" };
}
