/**
 * Group commit: items handed in while a batch is in flight wait and go out
 * together as the next batch when it finishes. An idle batcher sends at once,
 * so a lone item waits for nothing; under load the batches grow with the load,
 * and the fixed cost of a send (a transaction, an HTTP request) is paid once
 * per batch instead of once per item.
 */

/** One item's outcome within a batch. */
export type ItemOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions<I, R> {
  /** Sends one batch and returns one outcome per item, in order; a throw fails every item of the batch. */
  send: (items: I[]) => Promise<ItemOutcome<R>[]>;
  /** The most items in one batch (default 64). */
  maxBatch?: number;
  /** Batches in flight at once (default 1). */
  concurrency?: number;
  /** An item's weight (bytes, say) and the most a batch may weigh; an item heavier than that goes alone. */
  weigh?: (item: I) => number;
  maxWeight?: number;
}

/** Hands an item in; each call resolves with its own item's result or rejects with its own error. */
export interface GroupCommitter<I, R> {
  (item: I): Promise<R>;
  /** Resolves once every item handed in so far has its outcome. */
  idle(): Promise<void>;
}

interface Pending<I, R> {
  item: I;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

export function groupCommit<I, R>(options: GroupCommitOptions<I, R>): GroupCommitter<I, R> {
  const maxBatch = options.maxBatch ?? 64;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  const maxWeight = options.maxWeight ?? Infinity;
  const weigh = options.weigh ?? (() => 0);
  const queue: Pending<I, R>[] = [];
  let inFlight = 0;
  let whenIdle: (() => void)[] = [];

  /** The next batch: at most maxBatch items and maxWeight, but always at least one item. */
  function takeBatch(): Pending<I, R>[] {
    let count = 0;
    let weight = 0;
    for (const next of queue) {
      const w = weigh(next.item);
      if (count === maxBatch || (count > 0 && weight + w > maxWeight)) break;
      count++;
      weight += w;
    }
    return queue.splice(0, count);
  }

  async function sendBatch(batch: Pending<I, R>[]): Promise<void> {
    try {
      const outcomes = await options.send(batch.map((p) => p.item));
      if (outcomes.length !== batch.length) throw new RangeError(`a batch of ${batch.length} items came back with ${outcomes.length} outcomes`);
      outcomes.forEach((outcome, i) => (outcome.ok ? batch[i]!.resolve(outcome.value) : batch[i]!.reject(outcome.error)));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  function pump(): void {
    while (inFlight < concurrency && queue.length > 0) {
      const batch = takeBatch();
      inFlight++;
      void sendBatch(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
    if (inFlight === 0 && queue.length === 0) {
      for (const resolve of whenIdle) resolve();
      whenIdle = [];
    }
  }

  const add = (item: I) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      pump();
    });
  const idle = () => (inFlight === 0 && queue.length === 0 ? Promise.resolve() : new Promise<void>((resolve) => whenIdle.push(resolve)));
  return Object.assign(add, { idle });
}
