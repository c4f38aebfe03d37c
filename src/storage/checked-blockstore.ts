/**
 * A blockstore view with two duties the blockstore (LevelDB) does not take on:
 *
 * - Reads are verified: every block is hashed and compared with its CID, so a
 *   block altered on disk (by anyone with write access to the store
 *   directory) is refused instead of returned. The UnixFS exporter does not
 *   check this either.
 * - Writes are deduplicated: concurrent writes of one block (repeated chunks
 *   in a blob, or the same blob put twice at once) share one write, and a
 *   large block already on disk is not rewritten. A small block is written
 *   without looking first: the look-up costs a LevelDB read, as much CPU as
 *   the write it would save.
 */
import { createHash } from "node:crypto";
import type { UnixFSComponents } from "@helia/unixfs";
import type { CID } from "multiformats/cid";
import { StorageError } from "./blob-store.ts";
import { singleFlight } from "./single-flight.ts";

type Blocks = UnixFSComponents["blockstore"];

const SHA2_256 = 0x12;
/** Blocks of at least this many bytes are looked up before they are written. */
const LOOK_BEFORE_WRITE_BYTES = 64 * 1024;

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
      writeOnce(cid.toString(), async () =>
        !(bytes instanceof Uint8Array && bytes.byteLength < LOOK_BEFORE_WRITE_BYTES) && (await inner.has(cid, options))
          ? cid
          : inner.put(cid, bytes, options),
      ),
    has: (cid, options) => inner.has(cid, options),
    async *get(cid, options) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of inner.get(cid, options)) chunks.push(chunk);
      const joined = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks);
      // LevelDB hands out Buffers; readers get the plain Uint8Array a BlobStore promises.
      const block = new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
      assertBlockMatchesCid(cid, block);
      yield block;
    },
  };
}
