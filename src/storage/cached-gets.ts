/**
 * A BlobStore wrapper that keeps recently read blobs in memory, least
 * recently used first out, within a byte budget. Nodes read the same
 * programs task after task; a hit costs no request and no hashing.
 *
 * Caching by CID is safe: a blob never changes under its CID, and the inner
 * store has verified the bytes against the CID before they are cached.
 * Every get returns its own copy, so a caller that changes the bytes it got
 * cannot change what later callers get.
 */
import { blobTooLarge, type BlobStore, type GetOptions } from "./blob-store.ts";
import { parseBlobCid } from "./unixfs-profile.ts";

export interface CacheOptions {
  /** Total bytes of cached blobs; a blob larger than this is not cached. */
  maxBytes: number;
}

export function cacheGets(store: BlobStore, options: CacheOptions): BlobStore {
  const { maxBytes } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`cacheGets: maxBytes must be a non-negative integer, got ${maxBytes}`);
  }
  // A Map iterates in insertion order: re-inserting on every hit keeps the
  // least recently used entry first.
  const entries = new Map<string, Uint8Array>();
  let cachedBytes = 0;

  function remember(key: string, bytes: Uint8Array): void {
    if (bytes.byteLength > maxBytes || entries.has(key)) return;
    entries.set(key, bytes.slice());
    cachedBytes += bytes.byteLength;
    for (const [oldest, old] of entries) {
      if (cachedBytes <= maxBytes) break;
      entries.delete(oldest);
      cachedBytes -= old.byteLength;
    }
  }

  return {
    put: (bytes) => store.put(bytes),
    putMany: (blobs) => store.putMany(blobs),
    async get(cid: string, getOptions: GetOptions = {}) {
      // The canonical form, so one blob named in two encodings is one entry.
      const key = parseBlobCid(cid).toString();
      const hit = entries.get(key);
      if (hit === undefined) {
        const bytes = await store.get(cid, getOptions);
        remember(key, bytes);
        return bytes;
      }
      getOptions.signal?.throwIfAborted();
      if (getOptions.maxBytes !== undefined && hit.byteLength > getOptions.maxBytes) throw blobTooLarge(cid, getOptions.maxBytes);
      entries.delete(key);
      entries.set(key, hit);
      return hit.slice();
    },
    has: (cid) => store.has(cid),
    async close() {
      entries.clear();
      cachedBytes = 0;
      await store.close();
    },
  };
}
