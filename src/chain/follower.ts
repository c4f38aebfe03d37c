/**
 * The one chain follower: reads the chain's logs by block range for every watcher of a process, which plug
 * in as subscribers (an address and the events they follow -> a handler). The node's task watcher and
 * reopen keeper share one follower; an SDK client's completion watcher has its own.
 *
 * - Ranges: each crawl reads from the lowest position of the subscribers due up to the chain's head, at
 *   most `maxBlockRange` blocks at a time (public endpoints cap eth_getLogs ranges), in one eth_getLogs for
 *   all of them (their addresses and event selectors, ORed).
 * - Blooms: a subscriber whose events the pushed heads' logs blooms rule out over its range is moved past
 *   it without a read; when that holds for every subscriber, nothing is read.
 * - Heads: with a head source (new-heads.ts: eth_subscribe("newHeads") over WebSocket) a head wakes the
 *   follower at once and polling is only a safety net; without one, or while it is down, it polls. A head
 *   is only a wake-up: the range still starts at the last block read, so a dropped head loses nothing.
 * - Backoff: a failed read, or a failed handler, is reported and the next crawl waits, doubling from
 *   pollIntervalMs up to maxBackoffMs; heads do not cut the wait short while crawls fail.
 * - Order and checkpoint: a subscriber's handler is called for its logs in block and log order. A handler
 *   may return a promise: it is not awaited before the next log (a node runs many tasks at once), but the
 *   subscriber's position passes a block only once every handler of that block has completed, and the
 *   logs above it already handled are saved with it, so a restarted follower hands over again exactly the
 *   events whose handling had not finished. A handler that
 *   fails makes the follower read again from its block (the handlers that succeeded there are not called
 *   again). Positions are saved in a checkpoint (follower-checkpoint.ts) at most every saveIntervalMs while
 *   they move, and when the follower stops (after its running handlers have completed).
 */
import { toEventSelector, toHex, type AbiEvent, type Address, type Client, type EIP1193RequestFn, type Hex, type PublicRpcSchema } from "viem";
import { backoffDelay } from "../util/backoff.ts";
import { CloisterError } from "../util/base-error.ts";
import { ChainBehindError, memoryCheckpoint, type FollowerCheckpoint, type SavedPosition } from "./follower-checkpoint.ts";
import { headsRuleOut, latestBlockNumber, type HeadSource } from "./new-heads.ts";

/** A log as a subscriber receives it (decode it with viem's decodeEventLog against the events it follows). */
export interface FollowedLog {
  address: Address;
  /** The event selector, then the indexed arguments. */
  topics: [Hex, ...Hex[]];
  data: Hex;
  blockNumber: bigint;
  logIndex: number;
  transactionHash: Hex;
}

export interface FollowerSubscriber {
  /** Names the subscriber's position in the checkpoint: a restarted subscriber of the same id resumes there. */
  id: string;
  address: Address;
  /** The events followed (their selectors filter the logs). */
  events: readonly AbiEvent[];
  /** The first block to read when the checkpoint holds no position for this id. */
  fromBlock: bigint;
  /** Called in block and log order; a returned promise is tracked, not awaited before the next call. */
  handle(log: FollowedLog): void | Promise<void>;
  /** Read at most this often (a subscriber that needs not see each block at once spares reads); default: every crawl. */
  everyMs?: number;
  /** After each crawl that was due for this subscriber (whether or not the chain moved), with the last block read. */
  onCrawled?(block: bigint): void;
  /**
   * A view of the chain saved with the position (JSON-serializable), restored at subscribe. The handler of a
   * subscriber with state must be synchronous, so that its view is always that of its position.
   */
  state?: { save(): unknown; restore(saved: unknown): void };
}

export interface FollowerSubscription {
  /** The last block up to which every event of this subscriber was handled. */
  readonly position: bigint;
  /** Hands over again the events after `block` (an SDK waiter's task may have ended in a block read before it waited). */
  rewind(block: bigint): void;
}

export interface ChainFollowerOptions {
  reader: Client;
  /** Where positions are saved (default: in memory). */
  checkpoint?: FollowerCheckpoint;
  heads?: HeadSource;
  /** Wait between crawls without live heads. */
  pollIntervalMs: number;
  /** Wait between crawls while heads arrive by push (default 1000 ms; never below pollIntervalMs). */
  safetyPollIntervalMs?: number;
  /** Longest wait between crawls while they fail (default 5000 ms). */
  maxBackoffMs?: number;
  /** Most blocks read by one eth_getLogs (default 1000). */
  maxBlockRange?: bigint;
  /** Shortest time between two saves of the checkpoint while positions move (default 1000 ms). */
  saveIntervalMs?: number;
  /** A crawl failed (the chain could not be read, or a handler failed); the follower backs off and tries again. */
  onError(error: unknown): void;
  /** After every successful crawl, with the head it read up to. */
  onCrawled?(head: bigint): void;
}

export class FollowerError extends CloisterError<"FOLLOWER_SUBSCRIBER"> {}

/** A subscriber's crawl state: its handlers still running (or failed) by log, and the logs handled above its position. */
class Subscription {
  readonly sub: FollowerSubscriber;
  readonly selectors: readonly Hex[];
  readonly #address: string;
  /** The last block whose logs were handed to this subscriber. */
  crawledTo: bigint;
  /** A rewind asked for since the last crawl. */
  rewindTo: bigint | undefined;
  lastReadAt = Number.NEGATIVE_INFINITY;
  /** What was last saved (position and logs handled above it), to save only when it changed. */
  saved: string;
  /** Logs whose handler is running or failed, with their block: the position stays below them. */
  readonly #unfinished = new Map<string, bigint>();
  readonly #running = new Map<string, Promise<void>>();
  /** Logs handled above the position, with their block (a block may be read again after a failure). */
  readonly #done = new Map<string, bigint>();
  /** The lowest block of a handler that failed since the last crawl, and its error. */
  failed: { block: bigint; error: unknown } | undefined;
  /** Handler failures in a row (reset by a handler that succeeds), for the follower's backoff. */
  failuresInARow = 0;

  constructor(sub: FollowerSubscriber, position: bigint, handled: readonly string[]) {
    this.sub = sub;
    this.selectors = sub.events.map((event) => toEventSelector(event));
    this.#address = sub.address.toLowerCase();
    this.crawledTo = position;
    this.saved = `${position}/${handled.length}`;
    for (const key of handled) this.#done.set(key, BigInt(key.split(":")[0]!));
  }

  matches(log: FollowedLog): boolean {
    return log.blockNumber > this.crawledTo && log.address.toLowerCase() === this.#address && this.selectors.includes(log.topics[0]);
  }

  /** Calls the handler for `log` unless it already succeeded or is running; false when it threw at once. */
  dispatch(log: FollowedLog): boolean {
    const key = `${log.blockNumber}:${log.logIndex}`;
    if (this.#done.has(key) || this.#running.has(key)) return true;
    const block = log.blockNumber;
    let result: void | Promise<void>;
    try {
      result = this.sub.handle(log);
    } catch (error) {
      this.#fail(key, block, error);
      return false;
    }
    if (!(result instanceof Promise)) {
      this.#succeed(key, block);
      return true;
    }
    this.#unfinished.set(key, block);
    const run = result
      .then(() => this.#succeed(key, block), (error: unknown) => this.#fail(key, block, error))
      .finally(() => this.#running.delete(key));
    this.#running.set(key, run);
    return true;
  }

  #succeed(key: string, block: bigint): void {
    this.#unfinished.delete(key);
    this.#done.set(key, block);
    this.failuresInARow = 0;
  }

  #fail(key: string, block: bigint, error: unknown): void {
    this.#unfinished.set(key, block);
    this.failuresInARow++;
    if (!this.failed || block < this.failed.block) this.failed = { block, error };
  }

  /** Reads again from `block` + 1 at the next crawl. */
  applyRewind(): void {
    const to = this.rewindTo;
    this.rewindTo = undefined;
    if (to === undefined || to >= this.crawledTo) return;
    this.crawledTo = to;
    for (const [key, b] of this.#done) if (b > to) this.#done.delete(key);
  }

  /** Up to where every log is handled: below the lowest unfinished one, else the last block read. */
  position(): bigint {
    let safe = this.crawledTo;
    for (const block of this.#unfinished.values()) if (block - 1n < safe) safe = block - 1n;
    return safe;
  }

  /** The logs above the position already handled: a restarted follower does not hand them over again. */
  handledAbove(): string[] {
    return [...this.#done.keys()];
  }

  /** Drops what the position has passed: those blocks are not read again. */
  forgetUpTo(block: bigint): void {
    for (const [key, b] of this.#done) if (b <= block) this.#done.delete(key);
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.#running.values()]);
  }
}

export class ChainFollower {
  readonly #o: ChainFollowerOptions;
  readonly #checkpoint: FollowerCheckpoint;
  /** The saved positions, those of ids with no subscriber included (kept as they are). */
  readonly #saved: Map<string, SavedPosition>;
  readonly #subs = new Map<string, Subscription>();
  #savedAt = Number.NEGATIVE_INFINITY;
  /** The running loop, and the flag that stops it. */
  #run: Promise<void> | undefined;
  #token: { stopped: boolean } | undefined;
  /** Ends the current wait between crawls early. */
  #wake: (() => void) | undefined;
  /** A head arrived (or a subscriber was added or rewound) since the current crawl began: crawl again at once. */
  #headSeen = false;
  #backingOff = false;

  /** Reads the checkpoint's saved positions (throws FollowerCheckpointError when it is unreadable). */
  constructor(options: ChainFollowerOptions) {
    this.#o = options;
    this.#checkpoint = options.checkpoint ?? memoryCheckpoint();
    this.#saved = this.#checkpoint.load();
  }

  /** Throws ChainBehindError when a saved position is above the chain's `head` (a node checks before it starts anything). */
  assertNotAheadOf(head: bigint): void {
    for (const [id, saved] of this.#saved) if (!this.#subs.has(id)) this.#assertPosition(id, saved.block, head, "start");
    for (const [id, s] of this.#subs) this.#assertPosition(id, s.crawledTo, head, "start");
  }

  #assertPosition(id: string, block: bigint, head: bigint, when: "start" | "running"): void {
    if (block > head) throw new ChainBehindError(`the "${id}" position in the chain follower's checkpoint`, this.#checkpoint.where, block, head, when);
  }

  /** Adds a subscriber, at its saved position (its state restored) or else before its fromBlock. */
  subscribe(sub: FollowerSubscriber): FollowerSubscription {
    if (this.#subs.has(sub.id)) throw new FollowerError("FOLLOWER_SUBSCRIBER", `a subscriber "${sub.id}" already follows this chain follower; give each subscriber its own id`);
    if (sub.events.length === 0) throw new FollowerError("FOLLOWER_SUBSCRIBER", `subscriber "${sub.id}" follows no event; name at least one`);
    const saved = this.#saved.get(sub.id);
    if (saved?.state !== undefined) sub.state?.restore(saved.state);
    const s = new Subscription(sub, saved?.block ?? sub.fromBlock - 1n, saved?.handled ?? []);
    this.#subs.set(sub.id, s);
    this.#poke();
    return {
      get position() {
        return s.position();
      },
      rewind: (block) => {
        if (s.rewindTo === undefined || block < s.rewindTo) s.rewindTo = block;
        this.#poke();
      },
    };
  }

  /** Starts crawling (again, after stop: positions are kept). */
  start(): void {
    if (this.#token && !this.#token.stopped) return;
    const token = { stopped: false };
    this.#token = token;
    this.#run = (this.#run ?? Promise.resolve()).then(() => this.#loop(token));
  }

  /** Stops crawling, waits for the running handlers, and saves the positions. */
  async stop(): Promise<void> {
    if (this.#token) this.#token.stopped = true;
    this.#wake?.();
    await this.#run;
  }

  #poke(): void {
    this.#headSeen = true;
    // While crawls fail, the backoff stands: a head every block would otherwise hammer a failing RPC.
    if (!this.#backingOff) this.#wake?.();
  }

  async #loop(token: { stopped: boolean }): Promise<void> {
    const { heads, pollIntervalMs } = this.#o;
    const maxBackoffMs = this.#o.maxBackoffMs ?? 5_000;
    const unsubscribe = heads?.subscribe(() => this.#poke());
    let failures = 0;
    try {
      while (!token.stopped) {
        this.#headSeen = false;
        let more = false;
        try {
          const read = await this.#crawl();
          more = read.more;
          failures = 0;
          if (read.head !== undefined) this.#o.onCrawled?.(read.head);
        } catch (error) {
          failures++;
          this.#o.onError(error);
        }
        if (token.stopped) break;
        let failing = failures;
        for (const s of this.#subs.values()) failing = Math.max(failing, s.failuresInARow);
        this.#backingOff = failing > 0;
        if (!this.#backingOff && (this.#headSeen || more)) continue;
        // While heads arrive, a subscriber read every `everyMs` (the reopen keeper, which acts on deadlines even
        // when no block comes) still is.
        let safetyMs = this.#o.safetyPollIntervalMs ?? 1_000;
        for (const s of this.#subs.values()) if (s.sub.everyMs !== undefined && s.sub.everyMs < safetyMs) safetyMs = s.sub.everyMs;
        const interval = heads?.live ? Math.max(pollIntervalMs, safetyMs) : pollIntervalMs;
        const delay = failing === 0 ? interval : Math.max(pollIntervalMs, backoffDelay(failing, pollIntervalMs, maxBackoffMs));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    } finally {
      unsubscribe?.();
      await Promise.all([...this.#subs.values()].map((s) => s.settle()));
      try {
        this.#save(true);
      } catch (error) {
        this.#o.onError(error);
      }
    }
  }

  /** One crawl: up to the head (or maxBlockRange blocks), for the subscribers due. `more`: the head is not reached yet. */
  async #crawl(): Promise<{ head: bigint | undefined; more: boolean }> {
    const subs = [...this.#subs.values()];
    const failed: unknown[] = [];
    for (const s of subs) {
      s.applyRewind();
      if (!s.failed) continue;
      // Read again from the failed log's block (handlers that succeeded there are not called again).
      if (s.failed.block - 1n < s.crawledTo) s.crawledTo = s.failed.block - 1n;
      failed.push(s.failed.error);
      s.failed = undefined;
    }
    if (failed.length > 0) {
      for (const error of failed.slice(1)) this.#o.onError(error);
      throw failed[0];
    }
    const now = performance.now();
    const due = subs.filter((s) => s.sub.everyMs === undefined || now - s.lastReadAt >= s.sub.everyMs);
    let readTo: bigint | undefined;
    for (const s of due) if (readTo === undefined || s.crawledTo < readTo) readTo = s.crawledTo;
    if (readTo === undefined) return { head: undefined, more: false };
    const head = await latestBlockNumber(this.#o.reader, this.#o.heads, readTo);
    // A head below what was read already: the endpoint is behind, or another chain. Say so on every crawl.
    for (const s of subs) this.#assertPosition(s.sub.id, s.crawledTo, head, "running");
    const to = readTo + (this.#o.maxBlockRange ?? 1_000n) < head ? readTo + (this.#o.maxBlockRange ?? 1_000n) : head;
    const reading = due.filter((s) => s.crawledTo < to && !headsRuleOut(this.#o.heads, s.crawledTo + 1n, to, s.sub.address, s.selectors));
    const halted = new Set<Subscription>();
    if (reading.length > 0) {
      for (const log of await this.#readLogs(reading, to)) {
        for (const s of reading) {
          if (!halted.has(s) && s.matches(log) && !s.dispatch(log)) halted.add(s);
        }
      }
    }
    for (const s of due) {
      s.lastReadAt = now;
      // A handler that threw at once stops its subscriber's range there: it is read again from that block.
      if (halted.has(s)) continue;
      if (s.crawledTo < to) s.crawledTo = to;
      s.sub.onCrawled?.(s.crawledTo);
    }
    this.#save(false);
    return { head, more: to < head };
  }

  async #readLogs(reading: readonly Subscription[], to: bigint): Promise<FollowedLog[]> {
    let from = to;
    for (const s of reading) if (s.crawledTo + 1n < from) from = s.crawledTo + 1n;
    const addresses = [...new Set(reading.map((s) => s.sub.address.toLowerCase() as Address))];
    const selectors = [...new Set(reading.flatMap((s) => s.selectors))];
    const request = this.#o.reader.request as unknown as EIP1193RequestFn<PublicRpcSchema>;
    const logs = await request({
      method: "eth_getLogs",
      params: [{ address: addresses.length === 1 ? addresses[0]! : addresses, topics: [selectors], fromBlock: toHex(from), toBlock: toHex(to) }],
    });
    const followed: FollowedLog[] = [];
    for (const log of logs) {
      if (log.removed || log.blockNumber === null || log.logIndex === null || log.transactionHash === null || log.topics.length === 0) continue;
      followed.push({
        address: log.address,
        topics: log.topics as [Hex, ...Hex[]],
        data: log.data,
        blockNumber: BigInt(log.blockNumber),
        logIndex: Number(log.logIndex),
        transactionHash: log.transactionHash,
      });
    }
    // Nodes return logs in order; the follower's promise of order does not rest on it.
    return followed.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
  }

  /** Saves the positions that moved, at most every saveIntervalMs unless `force`. */
  #save(force: boolean): void {
    let moved = false;
    for (const s of this.#subs.values()) {
      const position = s.position();
      s.forgetUpTo(position);
      if (`${position}/${s.handledAbove().length}` !== s.saved) moved = true;
    }
    if (!moved || (!force && performance.now() - this.#savedAt < (this.#o.saveIntervalMs ?? 1_000))) return;
    const positions = new Map(this.#saved);
    for (const [id, s] of this.#subs) {
      const state = s.sub.state?.save();
      const handled = s.handledAbove();
      positions.set(id, { block: s.position(), ...(handled.length ? { handled } : {}), ...(state === undefined ? {} : { state }) });
    }
    this.#checkpoint.save(positions);
    this.#savedAt = performance.now();
    for (const [id, p] of positions) {
      this.#saved.set(id, p);
      const s = this.#subs.get(id);
      if (s) s.saved = `${p.block}/${p.handled?.length ?? 0}`;
    }
  }
}
