import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";

/** TaskMarket.TaskStatus, by its uint8 value. */
export const taskStatuses = ["None", "Open", "Accepted", "Completed", "Cancelled", "Refunded"] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** What the market stores of a task; the spec and assignment are in its events. */
export interface TaskRecord {
  taskId: bigint;
  status: TaskStatus;
  /** Attempts accepted so far. */
  attempt: number;
  /** The current attempt's deadline (unix seconds), 0 while open. */
  deadline: bigint;
  /** taskCommitment(spec) while open, taskCommitment(spec, assignment) once accepted. */
  commitment: Hex;
}

export async function readTask(client: Client, market: Address, taskId: bigint): Promise<TaskRecord> {
  const [status, attempt, deadline, commitment] = await readContract(client, {
    address: market,
    abi: taskMarketAbi,
    functionName: "taskState",
    args: [taskId],
  });
  const statusName = taskStatuses[status];
  if (statusName === undefined) throw new RangeError(`market returned unknown task status ${status} for task ${taskId}`);
  return { taskId, status: statusName, attempt, deadline: BigInt(deadline), commitment };
}
