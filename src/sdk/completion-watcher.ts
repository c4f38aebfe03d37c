/**
 * One poller per client for every task it waits on: each poll asks the chain
 * for the events that end a task (TaskCompleted, TaskRefunded, TaskRefused, TaskCancelled)
 * since the last poll (two requests, however many tasks are waiting) and
 * hands each to the task that waits for it: a completion resolves the wait, a
 * refund or cancellation fails it at once. It polls only while some task waits.
 *
 * A task starts waiting after its submit transaction is mined, and its
 * completion may already be in a block the poller scanned before; so a new
 * waiter's first poll scans from its submit block again.
 *
 * With a head source (eth_subscribe("newHeads") over WebSocket) it polls as
 * soon as a block is mined, and on its own only as a safety net while heads
 * arrive; a head is only a wake-up, the scan still covers every block.
 */
import { getAbiItem, toEventSelector, type Address, type Client, type Hex } from "viem";
import { getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { headsRuleOut, latestBlockNumber, type HeadSource } from "../chain/new-heads.ts";
import { refusalReasonName } from "../protocol/refusal.ts";
import { TaskVerificationError } from "./errors.ts";

export interface CompletionEvent {
  enclave: Address;
  outputDigest: Hex;
  provenanceDigest: Hex;
  outputCid: string;
  provenanceCid: string;
  transactionHash: Hex;
}

export interface CompletionWatcherOptions {
  reader: Client;
  market: Address;
  /** Wait between polls while tasks wait and no heads arrive by push (default 20 ms). */
  pollIntervalMs?: number;
  /** Poll on every new head (and when a task starts waiting); while it is live, poll on its own only every safetyPollIntervalMs. */
  heads?: HeadSource;
  /** Wait between polls while heads arrive by push (default 1000 ms; never below pollIntervalMs). */
  safetyPollIntervalMs?: number;
}

interface Waiter {
  fromBlock: bigint;
  /** The poller's scans so far started after this block or at it. */
  covered: boolean;
  resolve: (event: CompletionEvent) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The events that end a task: a completion, or a refund or cancellation after which none will come. */
const endings = [
  getAbiItem({ abi: taskMarketAbi, name: "TaskCompleted" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskRefunded" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskRefused" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskCancelled" }),
];
const endingSelectors = endings.map((event) => toEventSelector(event));

export class CompletionWatcher {
  readonly #o: CompletionWatcherOptions;
  readonly #waiters = new Map<bigint, Waiter>();
  /** The next block to scan for waiters already covered. */
  #cursor: bigint | undefined;
  #running = false;
  /** Ends the current wait between polls early (set while waiting, when there is a head source). */
  #wake: (() => void) | undefined;
  /** A head arrived (or a task started waiting) since the current poll began. */
  #headSeen = false;

  constructor(options: CompletionWatcherOptions) {
    this.#o = options;
  }

  /**
   * Resolves with the task's TaskCompleted event, found from `fromBlock` (its submit block) on; rejects with
   * TASK_REFUNDED, TASK_REFUSED or TASK_CANCELLED as soon as the task ends without one, and TASK_TIMEOUT after `timeoutMs`.
   */
  wait(taskId: bigint, fromBlock: bigint, timeoutMs: number): Promise<CompletionEvent> {
    if (this.#waiters.has(taskId)) return Promise.reject(new RangeError(`task ${taskId} is already awaited by this client`));
    return new Promise<CompletionEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(taskId);
        reject(new TaskVerificationError("TASK_TIMEOUT", `task ${taskId} was not completed within ${timeoutMs} ms; is a node running whose enclave is a candidate? The escrow can be reclaimed after the deadline`));
      }, timeoutMs);
      this.#waiters.set(taskId, { fromBlock, covered: false, resolve, reject, timer });
      if (!this.#running) void this.#loop();
      else this.#onHead();
    });
  }

  async #loop(): Promise<void> {
    this.#running = true;
    let failures = 0;
    const unsubscribe = this.#o.heads?.subscribe(() => this.#onHead());
    try {
      while (this.#waiters.size > 0) {
        this.#headSeen = false;
        try {
          await this.#poll();
          failures = 0;
        } catch (error) {
          // A failing RPC fails every waiter after a few tries rather than leaving them to their timeouts.
          if (++failures >= 10) {
            for (const [taskId, w] of this.#waiters) this.#settle(taskId, w, () => w.reject(error as Error));
          }
        }
        if (this.#waiters.size === 0) break;
        if (failures === 0 && this.#headSeen) continue;
        const pollIntervalMs = this.#o.pollIntervalMs ?? 20;
        const interval = this.#o.heads?.live ? Math.max(pollIntervalMs, this.#o.safetyPollIntervalMs ?? 1_000) : pollIntervalMs;
        const delay = failures === 0 ? interval : pollIntervalMs * Math.min(2 ** failures, 50);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          // While polls fail, the backoff stands.
          if (this.#o.heads && failures === 0) {
            this.#wake = () => {
              clearTimeout(timer);
              resolve();
            };
          }
        });
        this.#wake = undefined;
      }
    } finally {
      unsubscribe?.();
      this.#running = false;
    }
  }

  #onHead(): void {
    if (!this.#o.heads) return;
    this.#headSeen = true;
    this.#wake?.();
  }

  async #poll(): Promise<void> {
    const uncovered = [...this.#waiters.values()].filter((w) => !w.covered);
    const latest = await latestBlockNumber(this.#o.reader, this.#o.heads, this.#cursor === undefined ? -1n : this.#cursor - 1n);
    let fromBlock = this.#cursor ?? latest;
    for (const w of uncovered) if (w.fromBlock < fromBlock) fromBlock = w.fromBlock;
    // Blocks whose pushed headers' blooms rule out every ending (most hold only submissions and accepts) are not read.
    if (fromBlock <= latest && !headsRuleOut(this.#o.heads, fromBlock, latest, this.#o.market, endingSelectors)) {
      // getLogs decodes each log against `endings` (strict: a log that does not decode is dropped).
      for (const log of await getLogs(this.#o.reader, { address: this.#o.market, events: endings, fromBlock, toBlock: latest, strict: true })) {
        const taskId = log.args.taskId;
        const w = this.#waiters.get(taskId);
        if (!w) continue;
        if (log.eventName === "TaskCompleted") {
          const { enclave, outputDigest, provenanceDigest, outputCid, provenanceCid } = log.args;
          this.#settle(taskId, w, () => w.resolve({ enclave, outputDigest, provenanceDigest, outputCid, provenanceCid, transactionHash: log.transactionHash }));
        } else if (log.eventName === "TaskRefunded") {
          const message = `task ${taskId} was refunded in transaction ${log.transactionHash}: its last attempt missed its deadline, so no result will come; the escrow (${log.args.refund} wei or token units) and the late operator's deposit went back to the requester. Submit it again, with more attempts or a later deadline`;
          this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_REFUNDED", message)));
        } else if (log.eventName === "TaskRefused") {
          const reason = refusalReasonName(log.args.reason) ?? `reason ${log.args.reason}`;
          const message =
            `task ${taskId} was refused by enclave ${log.args.enclave} in transaction ${log.transactionHash} (${reason}): its own inputs make it unrunnable, ` +
            `so no node will run it; the node was paid its price (${log.args.price}) and the rest of the escrow (${log.args.refund}) went back to the requester. ` +
            "Check the envelope, the wrapped keys and the input ciphertext, and submit it again";
          this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_REFUSED", message)));
        } else {
          const message = `task ${taskId} was cancelled by its requester in transaction ${log.transactionHash}, before any node accepted it; the escrow went back to the requester`;
          this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_CANCELLED", message)));
        }
      }
    }
    for (const w of uncovered) w.covered = true;
    this.#cursor = latest + 1n;
  }

  #settle(taskId: bigint, w: Waiter, settle: () => void): void {
    clearTimeout(w.timer);
    this.#waiters.delete(taskId);
    settle();
  }
}
