import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { CHUNK_SIZE, cidOfBytes, singleChunkCidOfDigest } from "../../src/storage/unixfs-profile.ts";

test("a one-chunk blob's CID follows from its SHA-256; a larger blob's does not", async () => {
  for (const size of [0, 1, 2_000, CHUNK_SIZE]) {
    const bytes = new Uint8Array(size).map((_, i) => i % 251);
    const digest = createHash("sha256").update(bytes).digest();
    assert.equal(singleChunkCidOfDigest(digest).toString(), (await cidOfBytes(bytes)).toString(), `${size} bytes`);
  }
  const big = new Uint8Array(CHUNK_SIZE + 1);
  assert.notEqual(singleChunkCidOfDigest(createHash("sha256").update(big).digest()).toString(), (await cidOfBytes(big)).toString());
});
