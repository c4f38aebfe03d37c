import type { Address, Hex } from "viem";
import type { Assignment, TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface RefuseTaskParams {
  taskId: bigint;
  spec: TaskSpec;
  /** From the TaskAccepted event of the current attempt. */
  assignment: Assignment;
  /** The Refusal's reason code (src/protocol/refusal.ts). */
  reason: number;
  /** The accepted enclave's EIP-712 Refusal signature over (taskId, attempt, reason). */
  signature: Hex;
}

/**
 * Relays an enclave's refusal of a task its inputs make unrunnable: the task ends, the operator who accepted
 * gets its deposit back and its price, the requester the rest of the escrow, whoever sends it.
 */
export function refuseTask(client: WriterClient, market: Address, params: RefuseTaskParams): Promise<TxResult> {
  return writeContractTransaction(client, "refuseTask", {
    address: market,
    abi: taskMarketAbi,
    functionName: "refuseTask",
    args: [params.taskId, params.spec, params.assignment, params.reason, params.signature],
  });
}
