import { toHex, type Address, type Client, type Hex } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";

/** TaskMarket.TaskStatus, by its uint8 value. */
export const taskStatuses = ["None", "Open", "Accepted", "Completed", "Cancelled", "Refunded", "Refused"] as const;
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

const commitmentMask = ((1n << 200n) - 1n) << 56n;

/**
 * Unpacks the market's task word (`tasks(taskId)`, `taskWords`): commitment in bits 56..255, deadline in
 * 16..55, attempt in 8..15, status in 0..7.
 */
export function decodeTaskWord(taskId: bigint, word: bigint): TaskRecord {
  const status = Number(word & 0xffn);
  const statusName = taskStatuses[status];
  if (statusName === undefined) throw new RangeError(`market returned unknown task status ${status} for task ${taskId}`);
  return {
    taskId,
    status: statusName,
    attempt: Number((word >> 8n) & 0xffn),
    deadline: (word >> 16n) & 0xff_ffff_ffffn,
    commitment: toHex(word & commitmentMask, { size: 32 }),
  };
}

export async function readTask(client: Client, market: Address, taskId: bigint): Promise<TaskRecord> {
  const word = await readContract(client, { address: market, abi: taskMarketAbi, functionName: "tasks", args: [taskId] });
  return decodeTaskWord(taskId, word);
}
