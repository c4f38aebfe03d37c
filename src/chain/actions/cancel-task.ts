import type { Address } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** The requester cancels its open (not accepted) task and gets the escrow back. */
export function cancelTask(client: WriterClient, market: Address, taskId: bigint, spec: TaskSpec): Promise<TxResult> {
  return writeContractTransaction(client, "cancelTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "cancelTask",
    args: [taskId, spec],
  });
}
