import { parseEventLogs, type Address } from "viem";
import type { Assignment, TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { readTaskDeposit } from "./market-config.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface AcceptTaskParams {
  taskId: bigint;
  /** The spec exactly as submitted (from TaskSubmitted or TaskReopened). */
  spec: TaskSpec;
  /** The enclave that will run the task; the client's account must be its operator and it must have an offer in spec.token. */
  enclave: Address;
  /** The deposit to send (native currency); read from the market when omitted. */
  deposit?: bigint;
}

export interface AcceptedTask extends TxResult {
  /** Pass it back to completeTask (or reopenTask). */
  assignment: Assignment;
  attempt: number;
  /** Unix seconds: the attempt must be completed by then. */
  deadline: bigint;
}

/** Accepts an open task for the client's enclave, posting the market's per-task deposit. */
export async function acceptTask(client: WriterClient, market: Address, params: AcceptTaskParams): Promise<AcceptedTask> {
  const deposit = params.deposit ?? (await readTaskDeposit(client, market));
  const tx = await writeContractTransaction(client, "acceptTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "acceptTask",
    args: [params.taskId, params.spec, params.enclave],
    value: deposit,
  });
  const [event] = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "TaskAccepted" });
  if (!event) throw new RangeError(`acceptTask transaction ${tx.hash} emitted no TaskAccepted event; is ${market} a TaskMarket?`);
  const { enclave, operator, price, attempt, deadline } = event.args;
  return { ...tx, assignment: { enclave, operator, price, deposit: event.args.deposit }, attempt, deadline: BigInt(deadline) };
}
