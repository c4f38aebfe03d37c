/**
 * A blockstore view with two duties the blockstore (LevelDB) does not take on:
 *
 * - Reads are verified: every block is hashed and compared with its CID, so a
 *   block altered on disk (by anyone with write access to the store
 *   directory) is refused instead of returned. The UnixFS exporter does not
 *   check this either.
 * - Writes are deduplicated: a block already on disk is not rewritten, and
 *   concurrent writes of one block (repeated chunks in a blob, or the same
 *   blob put twice at once) share one write.
 */
import { createHash } from "node:crypto";
import type { UnixFSComponents } from "@helia/unixfs";
import type { CID } from "multiformats/cid";
import { StorageError } from "./blob-store.ts";
import { singleFlight } from "./single-flight.ts";

type Blocks = UnixFSComponents["blockstore"];

const SHA2_256 = 0x12;

export function assertBlockMatchesCid(cid: CID, block: Uint8Array): void {
  if (cid.multihash.code !== SHA2_256) {
    throw new StorageError(
      "STORAGE_FAILED",
      `Block ${cid} uses multihash 0x${cid.multihash.code.toString(16)}, which this store cannot verify; only sha2-256 blocks are supported.`,
    );
  }
  const digest = createHash("sha256").update(block).digest();
  if (!digest.equals(cid.multihash.digest)) {
    throw new StorageError(
      "BLOB_CORRUPTED",
      `Block ${cid} read from the store does not match its hash: the stored data was altered or damaged. Do not use this blob; re-upload it from the original bytes.`,
    );
  }
}

export function checkedBlockstore(inner: Blocks): Blocks {
  const writeOnce = singleFlight<CID>();
  return {
    put: (cid, bytes, options) =>
      writeOnce(cid.toString(), async () => ((await inner.has(cid, options)) ? cid : inner.put(cid, bytes, options))),
    has: (cid, options) => inner.has(cid, options),
    async *get(cid, options) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of inner.get(cid, options)) chunks.push(chunk);
      const block = Buffer.concat(chunks);
      assertBlockMatchesCid(cid, block);
      yield block;
    },
  };
}
