import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { Key } from "interface-datastore";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { CHUNK_SIZE, importBytes } from "../../src/storage/unixfs-profile.ts";
import { storageError, tempDir } from "./helpers.ts";

/** Writes blobs the way the file-per-entry store did: blocks, then a /pins/<cid> key each. */
async function writeLegacyStore(dir: string, blobs: Uint8Array[]): Promise<string[]> {
  const blocks = new FsBlockstore(join(dir, "blocks"));
  const datastore = new FsDatastore(join(dir, "datastore"));
  await blocks.open();
  await datastore.open();
  const cids: string[] = [];
  for (const bytes of blobs) {
    const { cid } = await importBytes(bytes, blocks);
    await datastore.put(new Key(`/pins/${cid.toString()}`), new Uint8Array());
    cids.push(cid.toString());
  }
  await blocks.close();
  await datastore.close();
  return cids;
}

test("a store in the old file layout is migrated on open: every blob and pin, old folders renamed", async (t) => {
  const dir = await tempDir(t);
  const blobs = [new TextEncoder().encode("hello\n"), randomBytes(CHUNK_SIZE * 2 + 5)];
  const cids = await writeLegacyStore(dir, blobs);

  const store = await openHeliaStore(dir);
  t.after(() => store.close());
  for (const [i, cid] of cids.entries()) {
    assert.equal(await store.has(cid), true, `blob ${i} is still pinned`);
    assert.deepEqual(await store.get(cid), new Uint8Array(blobs[i] ?? []), `blob ${i} still reads`);
  }
  assert.deepEqual((await readdir(dir)).sort(), ["blocks-level", "blocks.migrated", "datastore-level", "datastore.migrated"]);

  await store.close();
  const reopened = await openHeliaStore(dir);
  t.after(() => reopened.close());
  assert.equal(await reopened.has(cids[1] ?? ""), true, "blobs stay after the old folders are gone");
});

test("a migration that cannot finish fails with STORAGE_FAILED, keeps the old folders, and resumes on the next open", async (t) => {
  const dir = await tempDir(t);
  const [cid = ""] = await writeLegacyStore(dir, [randomBytes(1000)]);
  // A leftover folder in the way of the rename.
  await mkdir(join(dir, "datastore.migrated"));
  await writeFile(join(dir, "datastore.migrated", "leftover"), "x");

  await assert.rejects(openHeliaStore(dir), storageError("STORAGE_FAILED", "Nothing was deleted"));
  assert.ok((await readdir(dir)).includes("datastore"), "the old pins stay in place");

  await rm(join(dir, "datastore.migrated"), { recursive: true });
  const store = await openHeliaStore(dir);
  t.after(() => store.close());
  assert.equal(await store.has(cid), true);
  assert.equal((await store.get(cid)).byteLength, 1000);
});
