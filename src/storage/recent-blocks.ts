/**
 * The blocks this store wrote most recently, kept in memory up to a byte
 * budget (least recently used first out). A blob is usually read soon after
 * it is written: a task's envelope by the node that runs it, its result and
 * provenance by the requester. Serving those from memory spares a LevelDB
 * read each, the largest cost of a small `cat`. Readers still hash what they
 * get (checked-blockstore.ts), and get a copy, so nothing they do to it
 * reaches the cache.
 */
export class RecentBlocks {
  readonly #maxBytes: number;
  readonly #blocks = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Keeps a copy of `block`; a block larger than a quarter of the budget is not kept. */
  remember(key: string, block: Uint8Array): void {
    if (block.byteLength * 4 > this.#maxBytes) return;
    this.forget(key);
    this.#blocks.set(key, Uint8Array.from(block));
    this.#bytes += block.byteLength;
    for (const [oldest, bytes] of this.#blocks) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#blocks.delete(oldest);
      this.#bytes -= bytes.byteLength;
    }
  }

  /** A copy of the block, or undefined when it is not (or no longer) kept. */
  recall(key: string): Uint8Array | undefined {
    const block = this.#blocks.get(key);
    if (block === undefined) return undefined;
    this.#blocks.delete(key);
    this.#blocks.set(key, block);
    return Uint8Array.from(block);
  }

  /** Drops the block, for a block removed from the store. */
  forget(key: string): void {
    const block = this.#blocks.get(key);
    if (block === undefined) return;
    this.#blocks.delete(key);
    this.#bytes -= block.byteLength;
  }
}
