import { parseEventLogs, type Address } from "viem";
import type { Assignment, TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { readTaskDeposit } from "./market-config.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface AcceptTasksParams {
  /** Open tasks, each with its spec exactly as submitted (from TaskSubmitted or TaskReopened). */
  tasks: { taskId: bigint; spec: TaskSpec }[];
  /** The enclave that will run them all; the client's account must be its operator. */
  enclave: Address;
  /** The deposit per task (native currency); read from the market when omitted. */
  deposit?: bigint;
}

/** One accepted task of a batch: what acceptTask returns for it, less the transaction. */
export interface AcceptedBatchTask {
  taskId: bigint;
  /** Pass it back to completeTask(s) (or reopenTask). */
  assignment: Assignment;
  attempt: number;
  /** Unix seconds: the attempt must be completed by then. */
  deadline: bigint;
}

/**
 * Accepts many open tasks for one enclave in one transaction
 * (TaskMarket.acceptTasks), posting the per-task deposit for each. Tasks that
 * are no longer open (another node took them first) are skipped, and their
 * deposits come back; any other failure reverts the batch with that task's
 * own error. `accepted` is in task order; `skipped` lists the others.
 */
export async function acceptTasks(
  client: WriterClient,
  market: Address,
  params: AcceptTasksParams,
): Promise<TxResult & { accepted: AcceptedBatchTask[]; skipped: bigint[] }> {
  const { tasks, enclave } = params;
  const deposit = params.deposit ?? (await readTaskDeposit(client, market));
  const tx = await writeContractTransaction(client, "acceptTasks", {
    address: market,
    abi: taskMarketAbi,
    functionName: "acceptTasks",
    args: [tasks.map((task) => task.taskId), tasks.map((task) => task.spec), enclave],
    value: deposit * BigInt(tasks.length),
  }, { items: tasks.length });
  const events = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "TaskAccepted" });
  const byTask = new Map(events.map(({ args }) => [args.taskId, args]));
  const unasked = events.find(({ args }) => !tasks.some((task) => task.taskId === args.taskId));
  if (unasked) throw new RangeError(`acceptTasks transaction ${tx.hash} accepted task ${unasked.args.taskId}, which was not in the batch; is ${market} a TaskMarket?`);
  const accepted: AcceptedBatchTask[] = [];
  const skipped: bigint[] = [];
  for (const { taskId } of tasks) {
    const args = byTask.get(taskId);
    if (!args) {
      skipped.push(taskId);
      continue;
    }
    accepted.push({
      taskId,
      assignment: { enclave: args.enclave, operator: args.operator, price: args.price, deposit: args.deposit },
      attempt: args.attempt,
      deadline: BigInt(args.deadline),
    });
  }
  return { ...tx, accepted, skipped };
}
