/**
 * One waiter per client for every task it waits on: a subscriber of the client's own chain follower
 * (chain/follower.ts, its checkpoint in memory) for the events that end a task (TaskCompleted,
 * TaskRefunded, TaskRefused, TaskCancelled), handed to the task that waits for it: a completion resolves
 * the wait, a refund or cancellation fails it at once. The follower runs only while some task waits; with
 * a head source (eth_subscribe("newHeads") over WebSocket) it reads as soon as a block is mined.
 *
 * A task starts waiting after its submit transaction is mined, and its ending may already be in a block
 * the follower read before; so a new waiter rewinds the follower to its submit block.
 */
import { decodeEventLog, getAbiItem, type Address, type Client, type Hex } from "viem";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { ChainFollower, type FollowedLog, type FollowerSubscription } from "../chain/follower.ts";
import type { HeadSource } from "../chain/new-heads.ts";
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

/** Reads that fail in a row before every waiter is failed with the last error, rather than left to its timeout. */
const MAX_FAILURES = 10;

export class CompletionWatcher {
  readonly #follower: ChainFollower;
  readonly #o: CompletionWatcherOptions;
  readonly #waiters = new Map<bigint, Waiter>();
  #subscription: FollowerSubscription | undefined;
  #failures = 0;

  constructor(options: CompletionWatcherOptions) {
    this.#o = options;
    this.#follower = new ChainFollower({
      reader: options.reader,
      heads: options.heads,
      pollIntervalMs: options.pollIntervalMs ?? 20,
      safetyPollIntervalMs: options.safetyPollIntervalMs,
      maxBackoffMs: 1_000,
      onCrawled: () => (this.#failures = 0),
      onError: (error) => {
        if (++this.#failures < MAX_FAILURES) return;
        for (const [taskId, w] of this.#waiters) this.#settle(taskId, w, () => w.reject(error as Error));
      },
    });
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
        this.#idleIfNoWaiter();
        reject(new TaskVerificationError("TASK_TIMEOUT", `task ${taskId} was not completed within ${timeoutMs} ms; is a node running whose enclave is a candidate? The escrow can be reclaimed after the deadline`));
      }, timeoutMs);
      this.#waiters.set(taskId, { resolve, reject, timer });
      if (this.#subscription) this.#subscription.rewind(fromBlock - 1n);
      else this.#subscription = this.#follower.subscribe({ id: "completions", address: this.#o.market, events: endings, fromBlock, handle: (log) => this.#onEnding(log) });
      if (this.#waiters.size === 1) {
        this.#failures = 0;
        this.#follower.start();
      }
    });
  }

  #onEnding(log: FollowedLog): void {
    const ending = decodeEventLog({ abi: endings, data: log.data, topics: log.topics, strict: true });
    const taskId = ending.args.taskId;
    const w = this.#waiters.get(taskId);
    if (!w) return;
    if (ending.eventName === "TaskCompleted") {
      const { enclave, outputDigest, provenanceDigest, outputCid, provenanceCid } = ending.args;
      this.#settle(taskId, w, () => w.resolve({ enclave, outputDigest, provenanceDigest, outputCid, provenanceCid, transactionHash: log.transactionHash }));
    } else if (ending.eventName === "TaskRefunded") {
      const message = `task ${taskId} was refunded in transaction ${log.transactionHash}: its last attempt missed its deadline, so no result will come; the escrow (${ending.args.refund} wei or token units) and the late operator's deposit went back to the requester. Submit it again, with more attempts or a later deadline`;
      this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_REFUNDED", message)));
    } else if (ending.eventName === "TaskRefused") {
      const reason = refusalReasonName(ending.args.reason) ?? `reason ${ending.args.reason}`;
      const message =
        `task ${taskId} was refused by enclave ${ending.args.enclave} in transaction ${log.transactionHash} (${reason}): its own inputs make it unrunnable, ` +
        `so no node will run it; the node was paid its price (${ending.args.price}) and the rest of the escrow (${ending.args.refund}) went back to the requester. ` +
        "Check the envelope, the wrapped keys and the input ciphertext, and submit it again";
      this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_REFUSED", message)));
    } else {
      const message = `task ${taskId} was cancelled by its requester in transaction ${log.transactionHash}, before any node accepted it; the escrow went back to the requester`;
      this.#settle(taskId, w, () => w.reject(new TaskVerificationError("TASK_CANCELLED", message)));
    }
  }

  #settle(taskId: bigint, w: Waiter, settle: () => void): void {
    clearTimeout(w.timer);
    this.#waiters.delete(taskId);
    this.#idleIfNoWaiter();
    settle();
  }

  /** The follower reads only while some task waits (its position is kept for the next waiter). */
  #idleIfNoWaiter(): void {
    if (this.#waiters.size === 0) void this.#follower.stop();
  }
}
