import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { promisify } from "node:util";
import { CID } from "multiformats/cid";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { CHUNK_SIZE, cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { overwriteBlock, storageError, storedBlocks, tempDir } from "./helpers.ts";

const RAW = 0x55;
const DAG_PB = 0x70;
const MiB = 1024 * 1024;

test("a small blob round-trips under the CID `ipfs add --cid-version=1 --raw-leaves` gives", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  // Kubo's CIDv1 of "hello\n", from Kubo's own gateway test fixtures.
  const cid = await store.put(new TextEncoder().encode("hello\n"));
  assert.equal(cid, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am");
  assert.equal(CID.parse(cid).code, RAW, "one chunk is a single raw block");
  assert.equal(new TextDecoder().decode(await store.get(cid)), "hello\n");
  assert.equal(await store.has(cid), true);
});

test("an empty blob round-trips", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  const cid = await store.put(new Uint8Array());
  assert.equal(CID.parse(cid).version, 1);
  assert.equal((await store.get(cid)).byteLength, 0);
});

test("a 3 MiB blob is chunked into 256 KiB raw leaves under a dag-pb root and reassembled", async (t) => {
  const dir = await tempDir(t);
  const store = await openHeliaStore(dir);
  t.after(() => store.close());
  const bytes = randomBytes(3 * MiB);
  const cid = await store.put(bytes);
  const parsed = CID.parse(cid);
  assert.equal(parsed.version, 1);
  assert.equal(parsed.code, DAG_PB);
  assert.equal(cid, (await cidOfBytes(bytes)).toString());
  assert.deepEqual(await store.get(cid), new Uint8Array(bytes));
  await store.close();
  const blocks = await storedBlocks(dir);
  assert.equal(blocks.length, (3 * MiB) / CHUNK_SIZE + 1, "12 leaves and one root");
  assert.equal(blocks.filter((b) => b.bytes.byteLength === CHUNK_SIZE).length, 12);
});

test("repeated chunks and concurrent puts of one blob are stored once and stay readable", async (t) => {
  const dir = await tempDir(t);
  const store = await openHeliaStore(dir);
  t.after(() => store.close());
  const zeros = new Uint8Array(2 * MiB);
  const started = performance.now();
  const cids = await Promise.all([store.put(zeros), store.put(zeros), store.put(zeros)]);
  assert.ok(performance.now() - started < 500, "no stalls on racing block or pin writes");
  assert.equal(new Set(cids).size, 1);
  assert.deepEqual(await store.get(cids[0] ?? ""), zeros);
  await store.close();
  assert.equal((await storedBlocks(dir)).length, 2, "one distinct leaf and one root");
});

test("blobs persist across close and reopen", async (t) => {
  const dir = await tempDir(t);
  const first = await openHeliaStore(dir);
  const bytes = randomBytes(600 * 1024);
  const cid = await first.put(bytes);
  await first.close();
  // Reopening works only if close released both LevelDB locks.
  const second = await openHeliaStore(dir);
  t.after(() => second.close());
  assert.equal(await second.has(cid), true);
  assert.deepEqual(await second.get(cid), new Uint8Array(bytes));
});

test("a blob that is not stored fails fast with BLOB_NOT_FOUND", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  const absent = (await cidOfBytes(randomBytes(32))).toString();
  const started = performance.now();
  await assert.rejects(store.get(absent), storageError("BLOB_NOT_FOUND", absent));
  assert.ok(performance.now() - started < 500, "no network wait");
  assert.equal(await store.has(absent), false);
});

test("malformed and non-blob CIDs are refused with INVALID_CID", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  const stored = CID.parse(await store.put(new TextEncoder().encode("x")));
  const dagCbor = CID.createV1(0x71, stored.multihash).toString();
  const cidV0 = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN";
  for (const bad of ["", "not-a-cid", "bafkreicysg23kiwv34eg2d7qweipx", dagCbor, cidV0]) {
    await assert.rejects(store.get(bad), storageError("INVALID_CID"), `get(${JSON.stringify(bad)})`);
    await assert.rejects(store.has(bad), storageError("INVALID_CID"), `has(${JSON.stringify(bad)})`);
  }
});

test("maxBytes lets a blob of exactly that size through and refuses a larger one", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  for (const size of [1000, CHUNK_SIZE * 2 + 7]) {
    const bytes = randomBytes(size);
    const cid = await store.put(bytes);
    assert.equal((await store.get(cid, { maxBytes: size })).byteLength, size);
    await assert.rejects(store.get(cid, { maxBytes: size - 1 }), storageError("BLOB_TOO_LARGE", String(size - 1)));
  }
});

test("a block altered on disk is detected on read (BLOB_CORRUPTED)", async (t) => {
  const dir = await tempDir(t);
  let store = await openHeliaStore(dir);
  t.after(() => store.close());
  const small = await store.put(new TextEncoder().encode("ciphertext"));
  await store.close();
  const [onlyBlock] = await storedBlocks(dir);
  assert.ok(onlyBlock);
  const altered = Buffer.from(onlyBlock.bytes);
  altered[0] = (altered[0] ?? 0) ^ 1;
  await overwriteBlock(dir, onlyBlock.cid, altered);
  store = await openHeliaStore(dir);
  await assert.rejects(store.get(small), storageError("BLOB_CORRUPTED", small));

  const big = await store.put(randomBytes(CHUNK_SIZE * 3));
  await store.close();
  await overwriteBlock(dir, onlyBlock.cid, onlyBlock.bytes);
  const leaf = (await storedBlocks(dir)).find((b) => b.bytes.byteLength === CHUNK_SIZE);
  assert.ok(leaf);
  const leafBytes = Buffer.from(leaf.bytes);
  leafBytes[CHUNK_SIZE - 1] = (leafBytes[CHUNK_SIZE - 1] ?? 0) ^ 0x80;
  await overwriteBlock(dir, leaf.cid, leafBytes);
  store = await openHeliaStore(dir);
  await assert.rejects(store.get(big), storageError("BLOB_CORRUPTED"));
  assert.equal(new TextDecoder().decode(await store.get(small)), "ciphertext", "untouched blobs still read");
});

test("a closed store refuses calls with STORAGE_FAILED", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  const cid = await store.put(new Uint8Array([1]));
  await store.close();
  await assert.rejects(store.get(cid), storageError("STORAGE_FAILED", "closed"));
  await assert.rejects(store.put(new Uint8Array([2])), storageError("STORAGE_FAILED", "closed"));
});

test("a second open of one directory fails with STORAGE_FAILED saying it is in use, in this process or another", async (t) => {
  const dir = await tempDir(t);
  const store = await openHeliaStore(dir);
  t.after(() => store.close());
  const cid = await store.put(new TextEncoder().encode("still mine"));
  await assert.rejects(openHeliaStore(dir), storageError("STORAGE_FAILED", "is in use by another process"));

  const module = new URL("../../src/storage/helia-store.ts", import.meta.url).href;
  const script = `
    const { openHeliaStore } = await import(${JSON.stringify(module)});
    try {
      await openHeliaStore(${JSON.stringify(dir)});
      console.log("opened");
    } catch (err) {
      console.log(err.code + ": " + err.message);
    }`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
  assert.match(stdout, /^STORAGE_FAILED: .*is in use by another process/);
  assert.equal(new TextDecoder().decode(await store.get(cid)), "still mine", "the first opener is unaffected");
});

test("cat of a single-block blob serves byte ranges as the exporter does for a multi-block one", async (t) => {
  const store = await openHeliaStore(await tempDir(t));
  t.after(() => store.close());
  const small = randomBytes(300);
  const large = randomBytes(CHUNK_SIZE + 300);
  const smallCid = await store.put(small);
  const largeCid = await store.put(large);
  assert.equal(CID.parse(smallCid).code, RAW);
  assert.equal(CID.parse(largeCid).code, DAG_PB);
  const read = async (cid: string, offset?: number, length?: number): Promise<Uint8Array> => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of store.cat(cid, { offset, length })) chunks.push(chunk);
    return new Uint8Array(Buffer.concat(chunks));
  };
  for (const [offset, length] of [[undefined, undefined], [0, 10], [10, undefined], [290, 50], [299, 1], [300, 5], [400, 5], [5, 0]] as const) {
    const range = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes.subarray(offset ?? 0, length === undefined ? undefined : (offset ?? 0) + length));
    assert.deepEqual(await read(smallCid, offset, length), range(small), `raw ${offset}+${length}`);
    assert.deepEqual(await read(largeCid, offset, length), range(large), `dag-pb ${offset}+${length}`);
  }
  assert.ok(!((await store.get(smallCid)) instanceof Buffer), "get returns a plain Uint8Array");
});
