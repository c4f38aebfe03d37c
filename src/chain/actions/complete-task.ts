import type { Address, Hex } from "viem";
import type { Assignment, TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface CompleteTaskParams {
  taskId: bigint;
  spec: TaskSpec;
  /** From the TaskAccepted event of the current attempt. */
  assignment: Assignment;
  outputDigest: Hex;
  provenanceDigest: Hex;
  outputCid: string;
  provenanceCid: string;
  /** The accepted enclave's EIP-712 Completion signature (src/protocol/completion.ts). */
  signature: Hex;
}

/** Relays an enclave's completion proof; the operator who accepted is paid, whoever sends it. */
export function completeTask(client: WriterClient, market: Address, params: CompleteTaskParams): Promise<TxResult> {
  const { outputDigest, provenanceDigest, outputCid, provenanceCid } = params;
  return writeContractTransaction(client, "completeTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "completeTask",
    args: [params.taskId, params.spec, params.assignment, { outputDigest, provenanceDigest, outputCid, provenanceCid }, params.signature],
  });
}
