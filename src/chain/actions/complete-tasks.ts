import type { Address } from "viem";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import type { CompleteTaskParams } from "./complete-task.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface CompleteTasksParams {
  items: CompleteTaskParams[];
}

/**
 * Relays many enclaves' completion proofs in one transaction
 * (TaskMarket.completeTasks); each task's operator is paid as by completeTask.
 * All or nothing: an item that cannot be completed reverts the batch with its
 * own error, e.g. InvalidCompletionSignature(taskId, recovered).
 */
export function completeTasks(client: WriterClient, market: Address, params: CompleteTasksParams): Promise<TxResult> {
  const items = params.items.map(({ taskId, spec, assignment, outputDigest, provenanceDigest, outputCid, provenanceCid, signature }) => ({
    taskId,
    spec,
    assignment,
    result: { outputDigest, provenanceDigest, outputCid, provenanceCid },
    signature,
  }));
  return writeContractTransaction(client, "completeTasks", { address: market, abi: taskMarketAbi, functionName: "completeTasks", args: [items] }, { items: items.length });
}
