/**
 * Crawls TaskSubmitted and TaskReopened events (a task open for a node) from the checkpoint onwards. The
 * checkpoint only passes a block once every task in it has been handled, so a restarted node sees again
 * the events it had not finished.
 *
 * With a head source (eth_subscribe("newHeads") over WebSocket) the crawler reads as soon as a block
 * is mined and polls only as a safety net; a head is just a wake-up, the crawl still reads every block
 * range from the last one it read, so a dropped or late head loses nothing.
 */
import { getAbiItem, toEventSelector, type Address, type Client } from "viem";
import { getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { headsRuleOut, latestBlockNumber, type HeadSource } from "../chain/new-heads.ts";
import type { TaskSpec } from "../protocol/task.ts";
import { assertNotAheadOfChain } from "./chain-position.ts";
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
  /** Wait between crawls without live heads. */
  pollIntervalMs: number;
  /** Crawl on every new head; while it is live, poll only every safetyPollIntervalMs. */
  heads?: HeadSource;
  /** Wait between crawls while heads arrive by push (default 1000 ms; never below pollIntervalMs). */
  safetyPollIntervalMs?: number;
  handle: (task: SubmittedTask) => Promise<void>;
  onError: (error: unknown) => void;
  /** After every successful crawl, with the checkpoint it reached. */
  onCrawled?: (checkpointBlock: bigint) => void;
  /** Longest wait between crawls while they fail (default 5000 ms); the wait starts at pollIntervalMs and doubles. */
  maxBackoffMs?: number;
}

/**
 * The crawl's state: the handlers still running (or failed) by event, and the blocks whose events
 * all succeeded. A handler runs once per event: one that succeeded is not run again when its
 * block is crawled again, and one still running is joined rather than started twice.
 */
class Pipeline {
  /** The last block whose logs were read. */
  crawledTo: bigint;
  /** Events whose handler is running or failed, with their block: the checkpoint stays below them. */
  readonly #unfinished = new Map<string, bigint>();
  readonly #running = new Map<string, Promise<void>>();
  /** Events handled above the checkpoint, with their block (a block may be crawled again after a failure). */
  readonly #done = new Map<string, bigint>();
  /** The lowest block of a handler that failed since the last crawl, and its error. */
  failed: { block: bigint; error: unknown } | undefined;
  /** Handler failures in a row (reset by a handler that succeeds), for the crawler's backoff. */
  failuresInARow = 0;

  constructor(checkpointBlock: bigint) {
    this.crawledTo = checkpointBlock;
  }

  start(key: string, block: bigint, handler: () => Promise<void>): void {
    if (this.#done.has(key) || this.#running.has(key)) return;
    this.#unfinished.set(key, block);
    const run = handler().then(
      () => {
        this.#unfinished.delete(key);
        this.#done.set(key, block);
        this.failuresInARow = 0;
      },
      (error: unknown) => {
        this.failuresInARow++;
        if (!this.failed || block < this.failed.block) this.failed = { block, error };
      },
    ).finally(() => this.#running.delete(key));
    this.#running.set(key, run);
  }

  /** Up to where every event is handled: below the lowest unfinished one, else the last crawled block. */
  safeCheckpoint(): bigint {
    let safe = this.crawledTo;
    for (const block of this.#unfinished.values()) if (block - 1n < safe) safe = block - 1n;
    return safe;
  }

  /** Drops what the checkpoint has passed: those blocks are never crawled again. */
  forgetUpTo(block: bigint): void {
    for (const [key, b] of this.#done) if (b <= block) this.#done.delete(key);
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.#running.values()]);
  }
}

/**
 * A node keeps crawling while earlier tasks run: handlers are started, not awaited, and the checkpoint
 * advances to just below the lowest unfinished event. A failed handler makes the crawler report the
 * error, back off, and crawl again from that event's block.
 */
export function watchSubmittedTasks(options: TaskWatcherOptions): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  /** A head arrived since the current crawl began: crawl again without waiting. */
  let headSeen = false;
  let backingOff = false;
  const unsubscribe = options.heads?.subscribe(() => {
    headSeen = true;
    // While crawls fail, the backoff stands: a head every block would otherwise hammer a failing RPC.
    if (!backingOff) wake?.();
  });
  const pipeline = new Pipeline(options.checkpoint.block);
  const loop = (async () => {
    let failures = 0;
    while (!stopped) {
      headSeen = false;
      try {
        await crawlOnce(options, pipeline);
        failures = 0;
        options.onCrawled?.(options.checkpoint.block);
      } catch (error) {
        failures++;
        options.onError(error);
      }
      if (stopped) break;
      // While the RPC is down (or a handler keeps failing), back off instead of hammering it.
      const failing = Math.max(failures, pipeline.failuresInARow);
      backingOff = failing > 0;
      if (!backingOff && headSeen) continue;
      const interval = options.heads?.live ? Math.max(options.pollIntervalMs, options.safetyPollIntervalMs ?? 1_000) : options.pollIntervalMs;
      const delay = failing === 0 ? interval : Math.max(options.pollIntervalMs, backoffDelay(failing, options.pollIntervalMs, options.maxBackoffMs ?? 5_000));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    unsubscribe?.();
    await pipeline.settle();
    saveCheckpoint(options.checkpoint, pipeline);
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

function saveCheckpoint(checkpoint: Checkpoint, pipeline: Pipeline): void {
  const safe = pipeline.safeCheckpoint();
  if (safe <= checkpoint.block) return;
  checkpoint.save(safe);
  pipeline.forgetUpTo(safe);
}

const openingEvents = [getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" }), getAbiItem({ abi: taskMarketAbi, name: "TaskReopened" })];
const openingSelectors = openingEvents.map((event) => toEventSelector(event));

async function crawlOnce({ reader, market, checkpoint, handle, heads }: TaskWatcherOptions, pipeline: Pipeline): Promise<void> {
  const failed = pipeline.failed;
  if (failed) {
    // Crawl again from the failed event's block (handlers that succeeded there are not run again).
    pipeline.failed = undefined;
    if (failed.block - 1n < pipeline.crawledTo) pipeline.crawledTo = failed.block - 1n;
    throw failed.error;
  }
  const latest = await latestBlockNumber(reader, heads, pipeline.crawledTo);
  // A head below what was read already: the endpoint is behind, or another chain. Say so on every crawl.
  assertNotAheadOfChain({ what: "the task watcher's checkpoint", path: checkpoint.path, block: pipeline.crawledTo }, latest, "running");
  const fromBlock = pipeline.crawledTo + 1n;
  if (fromBlock > latest) return saveCheckpoint(checkpoint, pipeline);
  // Blocks whose pushed headers' blooms rule out both events (most hold only accepts and completions) are not read.
  if (headsRuleOut(heads, fromBlock, latest, market, openingSelectors)) {
    pipeline.crawledTo = latest;
    return saveCheckpoint(checkpoint, pipeline);
  }
  // Only the two events that open a task are asked for (a topic filter), not every event of the market.
  // A reopened task is open again; its TaskReopened event carries the spec like TaskSubmitted.
  // getLogs decodes each log against the events asked for (strict: a log that does not decode is dropped).
  const submitted = await getLogs(reader, { address: market, events: openingEvents, fromBlock, toBlock: latest, strict: true });
  for (const log of submitted) {
    pipeline.start(`${log.transactionHash}:${log.logIndex}`, log.blockNumber, () => handle({
      taskId: log.args.taskId,
      requester: log.args.spec.requester,
      reward: log.args.spec.maxPrice,
      spec: { ...log.args.spec, candidates: [...log.args.spec.candidates] },
      blockNumber: log.blockNumber,
    }));
  }
  pipeline.crawledTo = latest;
  saveCheckpoint(checkpoint, pipeline);
}
