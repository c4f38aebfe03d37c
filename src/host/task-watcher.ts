/**
 * Crawls TaskSubmitted events from the checkpoint onwards. A block range is
 * checkpointed only after every task in it has been handled, so a restarted
 * node sees again exactly the events it had not finished.
 */
import { parseEventLogs, type Address, type Client } from "viem";
import { getBlockNumber, getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { TaskSpec } from "../protocol/task.ts";
import type { Checkpoint } from "./checkpoint.ts";

export interface SubmittedTask {
  taskId: bigint;
  requester: Address;
  reward: bigint;
  spec: TaskSpec;
  blockNumber: bigint;
}

export interface TaskWatcherOptions {
  reader: Client;
  market: Address;
  checkpoint: Checkpoint;
  pollIntervalMs: number;
  handle: (task: SubmittedTask) => Promise<void>;
  onError: (error: unknown) => void;
}

export function watchSubmittedTasks(options: TaskWatcherOptions): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        await crawlOnce(options);
      } catch (error) {
        options.onError(error);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, options.pollIntervalMs);
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

async function crawlOnce({ reader, market, checkpoint, handle }: TaskWatcherOptions): Promise<void> {
  const latest = await getBlockNumber(reader, { cacheTime: 0 });
  const fromBlock = checkpoint.block + 1n;
  if (fromBlock > latest) return;
  const logs = await getLogs(reader, { address: market, fromBlock, toBlock: latest });
  const submitted = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskSubmitted" });
  await Promise.all(
    submitted.map((log) =>
      handle({
        taskId: log.args.taskId,
        requester: log.args.requester,
        reward: log.args.reward,
        spec: { ...log.args.spec, candidates: [...log.args.spec.candidates] },
        blockNumber: log.blockNumber,
      }),
    ),
  );
  checkpoint.save(latest);
}
