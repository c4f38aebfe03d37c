/**
 * The embedded IPFS store: Helia's UnixFS over a filesystem blockstore, with
 * a filesystem datastore holding the pin set, all under one directory:
 *
 *   <dir>/blocks     one file per block (blockstore-fs)
 *   <dir>/datastore  /pins/<cid> for every blob put here (datastore-fs)
 *
 * There is no networking at all: no libp2p, no routers, no block brokers, so
 * a block that is not on disk fails at once with BLOB_NOT_FOUND. Other
 * processes reach this store through kubo-rpc-server.ts; a directory must be
 * opened by one process at a time.
 */
import { join } from "node:path";
import { unixfs, type UnixFS } from "@helia/unixfs";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { Key } from "interface-datastore";
import type { CID } from "multiformats/cid";
import { blobNotFound, errorMessage, StorageError, type BlobStore, type GetOptions } from "./blob-store.ts";
import { readAll } from "./read-all.ts";
import { importBytes, parseBlobCid } from "./unixfs-profile.ts";
import { checkedBlockstore } from "./checked-blockstore.ts";
import { singleFlight } from "./single-flight.ts";

export interface CatOptions {
  /** First byte to return. */
  offset?: number;
  /** Stop after this many bytes. */
  length?: number;
  signal?: AbortSignal;
}

/** The embedded store, with the calls the RPC server needs beyond BlobStore. */
export interface HeliaStore extends BlobStore {
  readonly dir: string;
  /** Like put, and also returns the cumulative DAG size Kubo reports for an add. */
  add(bytes: Uint8Array): Promise<{ cid: string; dagSize: bigint }>;
  /** Streams the blob's bytes (or a range of them); every block is verified. */
  cat(cid: string, options?: CatOptions): AsyncIterable<Uint8Array>;
}

export async function openHeliaStore(dir: string): Promise<HeliaStore> {
  const blocks = new FsBlockstore(join(dir, "blocks"));
  const datastore = new FsDatastore(join(dir, "datastore"));
  try {
    await blocks.open();
    await datastore.open();
  } catch (err) {
    throw new StorageError(
      "STORAGE_FAILED",
      `Cannot open the IPFS store in ${dir}: ${errorMessage(err)}. Check that the directory is writable.`,
      { cause: err },
    );
  }
  const blockstore = checkedBlockstore(blocks);
  const fs: UnixFS = unixfs({ blockstore });
  const where = `the local IPFS store ${dir}`;
  const pinOnce = singleFlight<void>();
  let closed = false;

  const assertOpen = (): void => {
    if (closed) throw new StorageError("STORAGE_FAILED", `The IPFS store ${dir} is closed. Open it again before use.`);
  };
  const pinKey = (cid: CID): Key => new Key(`/pins/${cid.toString()}`);

  async function add(bytes: Uint8Array): Promise<{ cid: string; dagSize: bigint }> {
    assertOpen();
    try {
      const { cid, dagSize } = await importBytes(bytes, blockstore);
      // The pin is written after every block, so a pinned blob is complete.
      const key = pinKey(cid);
      await pinOnce(key.toString(), async () => {
        if (!(await datastore.has(key))) await datastore.put(key, new Uint8Array());
      });
      return { cid: cid.toString(), dagSize };
    } catch (err) {
      throw new StorageError("STORAGE_FAILED", `Cannot write a blob to ${where}: ${errorMessage(err)}.`, {
        cause: err,
      });
    }
  }

  async function* cat(cid: string, options: CatOptions = {}): AsyncIterable<Uint8Array> {
    assertOpen();
    const parsed = parseBlobCid(cid);
    try {
      yield* fs.cat(parsed, { offset: options.offset, length: options.length, signal: options.signal, offline: true });
    } catch (err) {
      throw mapReadError(err, cid, where);
    }
  }

  return {
    dir,
    add,
    cat,
    async put(bytes) {
      return (await add(bytes)).cid;
    },
    async get(cid: string, options: GetOptions = {}) {
      const { maxBytes, signal } = options;
      // Read one byte past the limit: seeing it proves the blob is too large.
      const length = maxBytes === undefined ? undefined : maxBytes + 1;
      return readAll(cat(cid, { length, signal }), cid, maxBytes);
    },
    async has(cid) {
      assertOpen();
      return datastore.has(pinKey(parseBlobCid(cid)));
    },
    async close() {
      if (closed) return;
      closed = true;
      await blocks.close();
      await datastore.close();
    },
  };
}

function mapReadError(err: unknown, cid: string, where: string): unknown {
  if (err instanceof StorageError) return err;
  const name = err instanceof Error ? err.name : "";
  if (name === "AbortError") return err;
  if (name === "NotFoundError" || name === "DoesNotExistError") {
    const e = blobNotFound(cid, where);
    e.cause = err;
    return e;
  }
  if (name === "NotUnixFSError" || name === "NotAFileError" || name === "NoContentError") {
    return new StorageError(
      "INVALID_CID",
      `CID ${cid} names a UnixFS directory or other non-file node, not a blob. Pass a CID returned by put.`,
      { cause: err },
    );
  }
  return new StorageError("STORAGE_FAILED", `Cannot read blob ${cid} from ${where}: ${errorMessage(err)}.`, {
    cause: err,
  });
}
