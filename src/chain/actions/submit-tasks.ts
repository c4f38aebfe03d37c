import { parseEventLogs, zeroAddress, type Address, type Hex } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface SubmitTasksParams {
  /** Each spec.requester must be the client's account; each salt makes its task id unique per requester. */
  items: { spec: TaskSpec; salt: Hex }[];
}

/**
 * Submits many tasks in one transaction (TaskMarket.submitTasks), escrowing
 * each spec.maxPrice: the native-currency ones as the transaction's value,
 * ERC-20 ones pulled by the market (approve the total per token first).
 * All or nothing: an invalid item reverts the batch with its own error, e.g.
 * TaskExists(taskId). Task ids come back in item order.
 */
export async function submitTasks(client: WriterClient, market: Address, params: SubmitTasksParams): Promise<TxResult & { taskIds: bigint[] }> {
  const { items } = params;
  const value = items.reduce((sum, { spec }) => (spec.token === zeroAddress ? sum + spec.maxPrice : sum), 0n);
  const tx = await writeContractTransaction(client, "submitTasks", {
    address: market,
    abi: taskMarketAbi,
    functionName: "submitTasks",
    args: [items.map((item) => item.spec), items.map((item) => item.salt)],
    value,
  }, { items: items.length });
  const events = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "TaskSubmitted" });
  if (events.length !== items.length) {
    throw new RangeError(`submitTasks transaction ${tx.hash} emitted ${events.length} TaskSubmitted events for ${items.length} tasks; is ${market} a TaskMarket?`);
  }
  return { ...tx, taskIds: events.map((event) => event.args.taskId) };
}
