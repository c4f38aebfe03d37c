import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { CID } from "multiformats/cid";
import { base58btc } from "multiformats/bases/base58";
import type { BlobStore } from "../../src/storage/blob-store.ts";
import { cacheGets } from "../../src/storage/cached-gets.ts";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { storageError, tempDir } from "./helpers.ts";

/** A Helia store whose get calls are counted. */
async function countedStore(t: { after(fn: () => Promise<void>): void }): Promise<{ store: BlobStore; gets: () => number }> {
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  let gets = 0;
  return {
    store: {
      ...helia,
      get: (cid, options) => {
        gets++;
        return helia.get(cid, options);
      },
    },
    gets: () => gets,
  };
}

test("a second get of a blob is served from memory with the same bytes", async (t) => {
  const { store, gets } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 10_000 });
  const bytes = randomBytes(1000);
  const cid = await cached.put(bytes);
  assert.deepEqual(await cached.get(cid), new Uint8Array(bytes));
  assert.equal(gets(), 1);
  assert.deepEqual(await cached.get(cid), new Uint8Array(bytes));
  const otherEncoding = CID.parse(cid).toString(base58btc);
  assert.deepEqual(await cached.get(otherEncoding), new Uint8Array(bytes), "the CID in another base is the same entry");
  assert.equal(gets(), 1, "hits do not reach the store");
});

test("every get returns its own copy, so changing it does not change the cache", async (t) => {
  const { store } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 10_000 });
  const cid = await cached.put(new Uint8Array([1, 2, 3]));
  const fromStore = await cached.get(cid);
  fromStore.fill(0);
  const hit = await cached.get(cid);
  assert.deepEqual(hit, new Uint8Array([1, 2, 3]));
  hit.fill(7);
  assert.deepEqual(await cached.get(cid), new Uint8Array([1, 2, 3]));
});

test("the least recently used blobs are evicted to stay within maxBytes", async (t) => {
  const { store, gets } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 2500 });
  const [a, b, c] = await store.putMany([randomBytes(1000), randomBytes(1000), randomBytes(1000)]);
  assert.ok(a !== undefined && b !== undefined && c !== undefined);
  await cached.get(a);
  await cached.get(b);
  await cached.get(a); // a is now more recently used than b
  assert.equal(gets(), 2);
  await cached.get(c); // 3000 bytes > 2500: b goes
  assert.equal(gets(), 3);
  await cached.get(a);
  await cached.get(c);
  assert.equal(gets(), 3, "a and c stayed");
  await cached.get(b);
  assert.equal(gets(), 4, "b was evicted");
});

test("a blob larger than the whole cache is not cached", async (t) => {
  const { store, gets } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 100 });
  const cid = await store.put(randomBytes(101));
  await cached.get(cid);
  await cached.get(cid);
  assert.equal(gets(), 2);
});

test("a hit still refuses a blob over the caller's maxBytes, and honours an aborted signal", async (t) => {
  const { store } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 10_000 });
  const cid = await store.put(randomBytes(500));
  assert.equal((await cached.get(cid)).byteLength, 500);
  assert.equal((await cached.get(cid, { maxBytes: 500 })).byteLength, 500);
  await assert.rejects(cached.get(cid, { maxBytes: 499 }), storageError("BLOB_TOO_LARGE", "499"));
  await assert.rejects(cached.get(cid, { signal: AbortSignal.abort() }), { name: "AbortError" });
});

test("misses, invalid CIDs and close go to the store", async (t) => {
  const { store } = await countedStore(t);
  const cached = cacheGets(store, { maxBytes: 10_000 });
  await assert.rejects(cached.get("not-a-cid"), storageError("INVALID_CID"));
  const cid = await store.put(randomBytes(10));
  assert.equal(await cached.has(cid), true);
  await cached.get(cid);
  await cached.close();
  await assert.rejects(cached.get(cid), storageError("STORAGE_FAILED", "closed"));
});
