import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";

/** TaskMarket.TaskStatus, by its uint8 value. */
export const taskStatuses = ["None", "Open", "Accepted", "Completed", "Cancelled", "Refunded"] as const;
export type TaskStatus = (typeof taskStatuses)[number];

export interface TaskRecord {
  taskId: bigint;
  status: TaskStatus;
  requester: Address;
  /** Escrowed reward in wei; kept as a record after payment. */
  reward: bigint;
  /** Zero address until accepted. */
  enclave: Address;
  operator: Address;
  deadline: bigint;
  specHash: Hex;
}

export async function readTask(client: Client, market: Address, taskId: bigint): Promise<TaskRecord> {
  const [requester, reward, enclave, deadline, status, operator, specHash] = await readContract(client, {
    address: market,
    abi: taskMarketAbi,
    functionName: "tasks",
    args: [taskId],
  });
  const statusName = taskStatuses[status];
  if (statusName === undefined) throw new RangeError(`market returned unknown task status ${status} for task ${taskId}`);
  return { taskId, status: statusName, requester, reward, enclave, operator, deadline, specHash };
}
