/**
 * Group commit for puts: a BlobStore wrapper that sends the puts made while
 * an upload is in flight together, as one putMany, when that upload ends.
 * An idle store sends a put at once (no timer, no added delay); under load
 * the number of uploads per blob falls as the queue grows. Against a Kubo
 * node every upload is an HTTP request, so this is what keeps the request
 * count below one per blob.
 *
 * One upload is in flight at a time: a large blob delays the puts queued
 * behind it by its upload time. `maxBatchBytes` keeps queued blobs from
 * joining a batch that is already large.
 */
import { groupCommit } from "../util/group-commit.ts";
import { StorageError, type BlobStore } from "./blob-store.ts";

export interface CoalescingOptions {
  /** Most blobs in one upload (default 64). */
  maxBatch?: number;
  /**
   * Most bytes in one upload (default 16 MiB). A blob larger than this is
   * sent in a batch of its own.
   */
  maxBatchBytes?: number;
}

const DEFAULT_MAX_BATCH = 64;
const DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024;

export function coalescePuts(store: BlobStore, options: CoalescingOptions = {}): BlobStore {
  const put = groupCommit<Uint8Array, string>({
    maxBatch: positiveInteger("maxBatch", options.maxBatch ?? DEFAULT_MAX_BATCH),
    maxWeight: positiveInteger("maxBatchBytes", options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES),
    weigh: (bytes) => bytes.byteLength,
    send: async (blobs) => {
      const cids = await store.putMany(blobs);
      if (cids.length !== blobs.length) {
        throw new StorageError(
          "STORAGE_FAILED",
          `The store returned ${cids.length} CIDs for ${blobs.length} blobs; its putMany is broken. Retry, or use the store without coalescing.`,
        );
      }
      return cids.map((cid) => ({ ok: true as const, value: cid }));
    },
  });
  return {
    put,
    putMany: (blobs) => Promise.all(blobs.map(put)),
    get: (cid, getOptions) => store.get(cid, getOptions),
    has: (cid) => store.has(cid),
    // Puts already accepted finish (or fail) before the store closes.
    async close() {
      await put.idle();
      await store.close();
    },
  };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`coalescePuts: ${name} must be a positive integer, got ${value}`);
  return value;
}
