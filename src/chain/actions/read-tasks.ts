import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import { decodeTaskWord, type TaskRecord } from "./read-task.ts";

/** Many tasks' records in one eth_call (TaskMarket.taskWords), in the order of `taskIds`; status "None" for an unknown id. */
export async function readTasks(client: Client, market: Address, taskIds: readonly bigint[]): Promise<TaskRecord[]> {
  if (taskIds.length === 0) return [];
  const words = await readContract(client, { address: market, abi: taskMarketAbi, functionName: "taskWords", args: [taskIds] });
  if (words.length !== taskIds.length) throw new RangeError(`taskWords on ${market} returned ${words.length} words for ${taskIds.length} task ids; is it a TaskMarket?`);
  return taskIds.map((taskId, i) => decodeTaskWord(taskId, words[i]!));
}
