/**
 * The task watcher: a subscriber of the node's chain follower (chain/follower.ts) for TaskSubmitted and
 * TaskReopened (a task open for a node). Each task's handler is started in event order and not awaited, so
 * a node keeps reading while earlier tasks run; the follower's position passes a block only once every task
 * in it has been handled, so a restarted node sees again the events it had not finished, and no other.
 */
import { decodeEventLog, getAbiItem, type Address } from "viem";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { ChainFollower, FollowedLog, FollowerSubscription } from "../chain/follower.ts";
import type { TaskSpec } from "../protocol/task.ts";

export interface SubmittedTask {
  taskId: bigint;
  requester: Address;
  reward: bigint;
  spec: TaskSpec;
  blockNumber: bigint;
}

/** Its position's id in the follower's checkpoint. */
export const taskWatcherId = "tasks";

// A reopened task is open again; its TaskReopened event carries the spec like TaskSubmitted.
const openingEvents = [getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" }), getAbiItem({ abi: taskMarketAbi, name: "TaskReopened" })];

/** Decodes an opening event (strict: a log that does not decode fails its handler, and is read again). */
export function submittedTask(log: FollowedLog): SubmittedTask {
  const { args } = decodeEventLog({ abi: openingEvents, data: log.data, topics: log.topics, strict: true });
  return { taskId: args.taskId, requester: args.spec.requester, reward: args.spec.maxPrice, spec: { ...args.spec, candidates: [...args.spec.candidates] }, blockNumber: log.blockNumber };
}

/** Hands every task opened on `market` from `fromBlock` on (or from the saved position) to `handle`. */
export function watchSubmittedTasks(
  follower: ChainFollower,
  options: { market: Address; fromBlock: bigint; handle: (task: SubmittedTask) => Promise<void> },
): FollowerSubscription {
  return follower.subscribe({
    id: taskWatcherId,
    address: options.market,
    events: openingEvents,
    fromBlock: options.fromBlock,
    handle: (log) => options.handle(submittedTask(log)),
  });
}
