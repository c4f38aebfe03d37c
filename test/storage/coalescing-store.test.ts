import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { StorageError, type BlobStore } from "../../src/storage/blob-store.ts";
import { coalescePuts } from "../../src/storage/coalescing-store.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { countingNode, storageError } from "./helpers.ts";

interface Upload {
  blobs: readonly Uint8Array[];
  succeed(): void;
  fail(err: unknown): void;
}

/** A store whose putMany calls wait until the test settles them; put is never used. */
function manualStore(): { store: BlobStore; uploads: Upload[]; closed: () => boolean } {
  const uploads: Upload[] = [];
  let closed = false;
  const store: BlobStore = {
    put: () => Promise.reject(new Error("the coalescing store must use putMany")),
    putMany: (blobs) =>
      new Promise((resolve, reject) => {
        uploads.push({
          blobs,
          succeed: () => resolve(blobs.map((bytes) => `cid-of-${Buffer.from(bytes).toString("hex")}`)),
          fail: reject,
        });
      }),
    get: () => Promise.resolve(new Uint8Array([9])),
    has: () => Promise.resolve(true),
    close: async () => {
      closed = true;
    },
  };
  return { store, uploads, closed: () => closed };
}

const byte = (value: number): Uint8Array => new Uint8Array([value]);
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("a put to an idle store goes out at once; puts made during an upload go together in the next", async () => {
  const { store, uploads } = manualStore();
  const coalesced = coalescePuts(store);
  const first = coalesced.put(byte(1));
  assert.equal(uploads.length, 1, "no waiting when idle");
  assert.deepEqual(uploads[0]?.blobs, [byte(1)]);

  const queued = [coalesced.put(byte(2)), coalesced.put(byte(3)), coalesced.put(byte(4))];
  await settle();
  assert.equal(uploads.length, 1, "one upload in flight at a time");
  uploads[0]?.succeed();
  assert.equal(await first, "cid-of-01");
  await settle();
  assert.equal(uploads.length, 2);
  assert.deepEqual(uploads[1]?.blobs, [byte(2), byte(3), byte(4)]);
  uploads[1]?.succeed();
  assert.deepEqual(await Promise.all(queued), ["cid-of-02", "cid-of-03", "cid-of-04"], "each caller gets its own CID");
});

test("a failed upload fails each of its callers with its error, and later puts still go out", async () => {
  const { store, uploads } = manualStore();
  const coalesced = coalescePuts(store);
  const first = coalesced.put(byte(1));
  const queued = [coalesced.put(byte(2)), coalesced.put(byte(3))];
  uploads[0]?.succeed();
  await first;
  await settle();
  const outage = new StorageError("STORAGE_UNREACHABLE", "node down");
  uploads[1]?.fail(outage);
  for (const put of queued) await assert.rejects(put, (err) => err === outage);

  const after = coalesced.put(byte(4));
  await settle();
  uploads[2]?.succeed();
  assert.equal(await after, "cid-of-04");
});

test("batches respect maxBatch and maxBatchBytes, and a caller's putMany keeps its order", async () => {
  const { store, uploads } = manualStore();
  const coalesced = coalescePuts(store, { maxBatch: 2, maxBatchBytes: 100 });
  const first = coalesced.put(byte(0));
  const many = coalesced.putMany([byte(1), byte(2), byte(3)]);
  const big = coalesced.put(new Uint8Array(150));
  const last = coalesced.put(byte(4));
  for (let i = 0; i < 4; i++) {
    uploads[i]?.succeed();
    await settle();
  }
  assert.deepEqual(
    uploads.map((upload) => upload.blobs.map((bytes) => bytes.byteLength === 1 ? bytes[0] : `${bytes.byteLength} bytes`)),
    [[0], [1, 2], [3], ["150 bytes"], [4]],
  );
  uploads[4]?.succeed();
  await first;
  assert.deepEqual(await many, ["cid-of-01", "cid-of-02", "cid-of-03"]);
  await big;
  assert.equal(await last, "cid-of-04");
});

test("close waits for accepted puts, then closes the store; get and has delegate", async () => {
  const { store, uploads, closed } = manualStore();
  const coalesced = coalescePuts(store);
  assert.deepEqual(await coalesced.get("any"), byte(9));
  assert.equal(await coalesced.has("any"), true);
  const put = coalesced.put(byte(1));
  const closing = coalesced.close();
  await settle();
  assert.equal(closed(), false, "an upload is still in flight");
  uploads[0]?.succeed();
  await closing;
  assert.equal(closed(), true);
  assert.equal(await put, "cid-of-01");
});

test("a store returning the wrong number of CIDs fails the batch", async () => {
  const store: BlobStore = { ...manualStore().store, putMany: async () => ["one", "two"] };
  const coalesced = coalescePuts(store);
  await assert.rejects(coalesced.put(byte(1)), storageError("STORAGE_FAILED", "2 CIDs for 1 blobs"));
});

test("concurrent puts through Kubo RPC take fewer requests than puts and get the right CIDs", async (t) => {
  const { url, addRequests, helia } = await countingNode(t);
  const coalesced = coalescePuts(openKuboStore(url));
  const blobs = Array.from({ length: 40 }, () => randomBytes(200));
  const cids = await Promise.all(blobs.map((bytes) => coalesced.put(bytes)));
  assert.ok(addRequests() < blobs.length / 2, `${addRequests()} requests for ${blobs.length} puts`);
  for (const [i, bytes] of blobs.entries()) {
    assert.equal(cids[i], (await cidOfBytes(bytes)).toString());
    assert.equal(await helia.has(cids[i] ?? ""), true);
  }
  await coalesced.close();
});
