import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { importFile } from "ipfs-unixfs-importer";
import type { CID } from "multiformats/cid";
import { CHUNK_SIZE, cidOfBytes, importBytes, importerOptions } from "../../src/storage/unixfs-profile.ts";

/** Every block the UnixFS importer itself writes for the bytes, and its result. */
async function viaImporter(bytes: Uint8Array): Promise<{ cid: string; size: bigint; blocks: string[] }> {
  const blocks: string[] = [];
  const result = await importFile({ content: bytes }, { put: async (cid: CID) => (blocks.push(cid.toString()), cid) }, importerOptions());
  return { cid: result.cid.toString(), size: result.size, blocks };
}

test("blobs of one chunk or less get the importer's CID, DAG size and single block without it", async () => {
  for (const size of [0, 1, 300, CHUNK_SIZE - 1, CHUNK_SIZE]) {
    const bytes = randomBytes(size);
    const expected = await viaImporter(bytes);
    const written: { cid: string; bytes: Uint8Array }[] = [];
    const imported = await importBytes(bytes, { put: async (cid: CID, block: Uint8Array) => (written.push({ cid: cid.toString(), bytes: block }), cid) });
    assert.equal(imported.cid.toString(), expected.cid, `${size} bytes`);
    assert.equal(imported.dagSize, expected.size, `${size} bytes`);
    assert.deepEqual(written.map((block) => block.cid), expected.blocks, `${size} bytes`);
    assert.deepEqual(written[0]?.bytes, bytes);
    assert.equal((await cidOfBytes(bytes)).toString(), expected.cid, `${size} bytes`);
  }
  assert.equal((await cidOfBytes(new Uint8Array())).toString(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
});

test("blobs over one chunk go through the importer: a dag-pb root over raw leaves", async () => {
  const bytes = randomBytes(CHUNK_SIZE + 1);
  const expected = await viaImporter(bytes);
  const imported = await importBytes(bytes, { put: async (cid: CID) => cid });
  assert.equal(imported.cid.toString(), expected.cid);
  assert.equal(expected.blocks.length, 3);
  assert.match(expected.cid, /^bafybei/);
  assert.equal((await cidOfBytes(bytes)).toString(), expected.cid);
});
