/**
 * Crawls TaskSubmitted and TaskReopened events (a task open for a node) from the checkpoint onwards. A block range is
 * checkpointed only after every task in it has been handled, so a restarted
 * node sees again exactly the events it had not finished.
 */
import { parseEventLogs, type Address, type Client } from "viem";
import { getBlockNumber, getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { TaskSpec } from "../protocol/task.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { backoffDelay } from "./retry.ts";

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
  /** After every successful crawl, with the checkpoint it reached. */
  onCrawled?: (checkpointBlock: bigint) => void;
  /** Longest wait between crawls while they fail (default 5000 ms); the wait starts at pollIntervalMs and doubles. */
  maxBackoffMs?: number;
}

/**
 * Runs each event's handler once, even when its block range is crawled again
 * because another event in it failed: a handler that succeeded is not run
 * again, and one still running is joined rather than started twice.
 */
function handledOnce() {
  const done = new Set<string>();
  const running = new Map<string, Promise<void>>();
  return {
    run(key: string, handler: () => Promise<void>): Promise<void> {
      if (done.has(key)) return Promise.resolve();
      const existing = running.get(key);
      if (existing) return existing;
      const run = (async () => {
        await handler();
        done.add(key);
      })().finally(() => running.delete(key));
      running.set(key, run);
      return run;
    },
    /** Called once a range is checkpointed: its events will never be crawled again. */
    forget(): void {
      done.clear();
    },
  };
}

type HandledOnce = ReturnType<typeof handledOnce>;

export function watchSubmittedTasks(options: TaskWatcherOptions): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const once = handledOnce();
  const loop = (async () => {
    let failures = 0;
    while (!stopped) {
      try {
        await crawlOnce(options, once);
        failures = 0;
        options.onCrawled?.(options.checkpoint.block);
      } catch (error) {
        failures++;
        options.onError(error);
      }
      if (stopped) break;
      // While the RPC is down (or a handler keeps failing), back off instead of hammering it.
      const delay = failures === 0 ? options.pollIntervalMs : Math.max(options.pollIntervalMs, backoffDelay(failures, options.pollIntervalMs, options.maxBackoffMs ?? 5_000));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
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

async function crawlOnce({ reader, market, checkpoint, handle }: TaskWatcherOptions, once: HandledOnce): Promise<void> {
  const latest = await getBlockNumber(reader, { cacheTime: 0 });
  const fromBlock = checkpoint.block + 1n;
  if (fromBlock > latest) return;
  const logs = await getLogs(reader, { address: market, fromBlock, toBlock: latest });
  // A reopened task is open again; its TaskReopened event carries the spec like TaskSubmitted.
  const submitted = parseEventLogs({ abi: taskMarketAbi, logs, eventName: ["TaskSubmitted", "TaskReopened"] });
  await settleAll(
    submitted.map((log) =>
      once.run(`${log.transactionHash}:${log.logIndex}`, () => handle({
        taskId: log.args.taskId,
        requester: log.args.spec.requester,
        reward: log.args.spec.maxPrice,
        spec: { ...log.args.spec, candidates: [...log.args.spec.candidates] },
        blockNumber: log.blockNumber,
      })),
    ),
  );
  checkpoint.save(latest);
  once.forget();
}

/** Waits for every handler (none is left running unobserved), then rethrows the first failure. */
async function settleAll(runs: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(runs)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}
