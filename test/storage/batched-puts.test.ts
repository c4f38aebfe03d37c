import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { batchedPuts } from "../../src/storage/batched-puts.ts";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { storedBlocks, tempDir } from "./helpers.ts";

test("puts made while a batch is written go out together as the next batch; a lone put at once", async () => {
  const batches: string[][] = [];
  let release: () => void = () => {};
  const db = {
    batch: async (operations: { key: string }[]) => {
      batches.push(operations.map((op) => op.key));
      await new Promise<void>((resolve) => (release = resolve));
    },
  };
  const put = batchedPuts(db);
  const first = put("a", new Uint8Array([1]));
  const rest = ["b", "c", "d"].map((key) => put(key, new Uint8Array([2])));
  assert.deepEqual(batches, [["a"]], "the first put is written at once, alone");
  let done = false;
  void first.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(done, false, "a put resolves only once its batch is written");
  release();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(batches, [["a"], ["b", "c", "d"]]);
  release();
  await Promise.all(rest);
});

test("a failed batch fails each of its puts", async () => {
  const put = batchedPuts({
    batch: async () => {
      throw new Error("disk full");
    },
  });
  await assert.rejects(Promise.all([put("a", new Uint8Array()), put("b", new Uint8Array())]), /disk full/);
});

test("blobs put concurrently are all stored, pinned and readable after a reopen", async (t) => {
  const dir = await tempDir(t);
  const blobs = Array.from({ length: 40 }, () => randomBytes(300));
  let store = await openHeliaStore(dir);
  const cids = await Promise.all(blobs.map((bytes) => store.put(bytes)));
  await store.close();
  assert.equal((await storedBlocks(dir)).length, blobs.length, "the blocks under blockstore-level's keys");
  store = await openHeliaStore(dir);
  t.after(() => store.close());
  for (const [i, cid] of cids.entries()) {
    assert.equal(await store.has(cid), true);
    assert.deepEqual(await store.get(cid), new Uint8Array(blobs[i] ?? []));
  }
});
