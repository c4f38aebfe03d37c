/**
 * The embedded IPFS store: Helia's UnixFS over a LevelDB blockstore, with a
 * LevelDB datastore holding the pin set, all under one directory:
 *
 *   <dir>/blocks-level     every block, keyed by multihash (blockstore-level)
 *   <dir>/datastore-level  /pins/<cid> for every blob put here (datastore-level)
 *
 * LevelDB rather than a file per block: blockstore-fs spends about 1 ms of CPU
 * on the filesystem calls of one put, LevelDB about 0.06 ms. A directory in
 * the older file layout (<dir>/blocks, <dir>/datastore) is migrated on open
 * (legacy-fs-layout.ts).
 *
 * There is no networking at all: no libp2p, no routers, no block brokers, so
 * a block that is not stored fails at once with BLOB_NOT_FOUND. Other
 * processes reach this store through kubo-rpc-server.ts: LevelDB lets one
 * process at a time open a directory, and a second open fails.
 */
import { mkdir, realpath } from "node:fs/promises";
import { join } from "node:path";
import { unixfs, type UnixFS, type UnixFSComponents } from "@helia/unixfs";
import { LevelBlockstore } from "blockstore-level";
import { LevelDatastore } from "datastore-level";
import { Key } from "interface-datastore";
import { base32upper } from "multiformats/bases/base32";
import { CID } from "multiformats/cid";
import { blobNotFound, errorMessage, StorageError, type BlobStore, type GetOptions } from "./blob-store.ts";
import { readAll } from "./read-all.ts";
import { importBytes, parseBlobCid } from "./unixfs-profile.ts";
import { batchedPuts } from "./batched-puts.ts";
import { RecentBlocks } from "./recent-blocks.ts";
import { checkedBlockstore } from "./checked-blockstore.ts";
import { migrateLegacyLayout } from "./legacy-fs-layout.ts";
import { GcLock } from "./gc-lock.ts";
import { createLimiter } from "../util/limiter.ts";

/**
 * Blobs of one addMany imported at once. Each blob's blocks go through the
 * checked blockstore one put at a time (keeping its write deduplication);
 * concurrent imports fill LevelDB's write batches (batched-puts.ts).
 */
const IMPORT_CONCURRENCY = 16;
const RAW_CODEC = 0x55;
const PINS_PREFIX = "/pins";
/** Memory for the blocks written last, which are read soon after (recent-blocks.ts). */
const RECENT_BLOCK_BYTES = 32 * 1024 * 1024;

export interface CatOptions {
  /** First byte to return. */
  offset?: number;
  /** Stop after this many bytes. */
  length?: number;
  signal?: AbortSignal;
}

/**
 * The store below the blob interface: blocks and pins of any CID (CIDv0
 * too), as the Kubo RPC server (kubo-rpc-server.ts) serves them.
 */
export interface IpfsNode {
  /** Held shared by writes that end in a pin, alone by block removal (gc-lock.ts). */
  readonly gcLock: GcLock;
  /** Reads verified against the CID's sha2-256, writes deduplicated (checked-blockstore.ts). */
  readonly blockstore: UnixFSComponents["blockstore"];
  /** The block's bytes, verified; BLOB_NOT_FOUND when it is not stored. */
  getBlock(cid: CID, signal?: AbortSignal): Promise<Uint8Array>;
  hasBlock(cid: CID): Promise<boolean>;
  deleteBlock(cid: CID): Promise<void>;
  /** The size of every stored block. */
  blockSizes(): AsyncIterable<number>;
  /** Records a recursive pin; the caller has checked that the whole DAG is stored. */
  pin(cid: CID): Promise<void>;
  /** False when the CID was not pinned. */
  unpin(cid: CID): Promise<boolean>;
  isPinned(cid: CID): Promise<boolean>;
  pins(): AsyncIterable<CID>;
}

/** The embedded store, with the calls the RPC server needs beyond BlobStore. */
export interface HeliaStore extends BlobStore {
  readonly dir: string;
  readonly node: IpfsNode;
  /** Like put, and also returns the cumulative DAG size Kubo reports for an add. */
  add(bytes: Uint8Array): Promise<{ cid: string; dagSize: bigint }>;
  /** add for several blobs, imported concurrently; results in input order. */
  addMany(blobs: readonly Uint8Array[]): Promise<{ cid: string; dagSize: bigint }[]>;
  /** Streams the blob's bytes (or a range of them); every block is verified. */
  cat(cid: string, options?: CatOptions): AsyncIterable<Uint8Array>;
}

/**
 * Directories open in this process. A second LevelDB open of a directory in
 * the same process must never be tried: LevelDB refuses it, but closes its
 * file descriptor on the LOCK file while doing so, and POSIX then drops this
 * process's lock, letting another process open the live database.
 */
const openDirs = new Set<string>();

function inUse(dir: string, cause?: unknown): StorageError {
  return new StorageError(
    "STORAGE_FAILED",
    `The IPFS store in ${dir} is in use by another process (or already open in this one). ` +
      "One process at a time may open it: stop the other one, or reach its store over its Kubo RPC API.",
    { cause },
  );
}

export async function openHeliaStore(dir: string): Promise<HeliaStore> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new StorageError(
      "STORAGE_FAILED",
      `Cannot create the IPFS store directory ${dir}: ${errorMessage(err)}. Check that its parent is writable.`,
      { cause: err },
    );
  }
  const realDir = await realpath(dir);
  if (openDirs.has(realDir)) throw inUse(dir);
  openDirs.add(realDir);
  const blocks = new LevelBlockstore(join(dir, "blocks-level"));
  const datastore = new LevelDatastore(join(dir, "datastore-level"));
  try {
    await openLevel(blocks.db, dir);
    await openLevel(datastore.db, dir);
    await migrateLegacyLayout(dir, blocks, datastore);
  } catch (err) {
    await Promise.allSettled([blocks.close(), datastore.close()]);
    openDirs.delete(realDir);
    if (err instanceof StorageError) throw err;
    throw new StorageError(
      "STORAGE_FAILED",
      `Cannot open the IPFS store in ${dir}: ${errorMessage(err)}. Check that the directory is writable.`,
      { cause: err },
    );
  }
  // Writes of concurrent puts go to LevelDB together, one batch per database.
  // The keys are the ones blockstore-level and datastore-level use, so both
  // still read (and legacy-fs-layout.ts still writes) the same entries.
  const putBlockEntry = batchedPuts(blocks.db);
  const putPinEntry = batchedPuts(datastore.db);
  const recent = new RecentBlocks(RECENT_BLOCK_BYTES);
  const blockstore = checkedBlockstore({
    put: async (cid, bytes) => {
      const key = blockKey(cid);
      const block = bytes instanceof Uint8Array ? bytes : await collect(bytes);
      await putBlockEntry(key, block);
      recent.remember(key, block);
      return cid;
    },
    has: (cid, options) => blocks.has(cid, options),
    get: (cid, options) => {
      const kept = recent.recall(blockKey(cid));
      return kept === undefined ? blocks.get(cid, options) : oneChunk(kept);
    },
  });
  const fs: UnixFS = unixfs({ blockstore });
  const gcLock = new GcLock();
  const where = `the local IPFS store ${dir}`;
  let closed = false;

  const assertOpen = (): void => {
    if (closed) throw new StorageError("STORAGE_FAILED", `The IPFS store ${dir} is closed. Open it again before use.`);
  };
  const pinKey = (cid: CID): Key => new Key(`${PINS_PREFIX}/${cid.toString()}`);

  async function add(bytes: Uint8Array): Promise<{ cid: string; dagSize: bigint }> {
    assertOpen();
    try {
      return await gcLock.shared(async () => {
        const { cid, dagSize } = await importBytes(bytes, blockstore);
        // The pin is written after every block, so a pinned blob is complete.
        // Writing it again for a blob put twice is harmless: it is an empty entry.
        await putPinEntry(pinKey(cid).toString(), new Uint8Array());
        return { cid: cid.toString(), dagSize };
      });
    } catch (err) {
      throw new StorageError("STORAGE_FAILED", `Cannot write a blob to ${where}: ${errorMessage(err)}.`, {
        cause: err,
      });
    }
  }

  async function addMany(blobs: readonly Uint8Array[]): Promise<{ cid: string; dagSize: bigint }[]> {
    assertOpen();
    const limit = createLimiter(IMPORT_CONCURRENCY);
    return Promise.all(blobs.map((bytes) => limit(() => add(bytes))));
  }

  async function* cat(cid: string, options: CatOptions = {}): AsyncIterable<Uint8Array> {
    assertOpen();
    const parsed = parseBlobCid(cid);
    try {
      if (parsed.code === RAW_CODEC) {
        // A raw block is the whole file: read it directly, without the exporter.
        options.signal?.throwIfAborted();
        const offset = options.offset ?? 0;
        for await (const block of blockstore.get(parsed, { signal: options.signal })) {
          const end = options.length === undefined ? undefined : offset + options.length;
          const range = block.subarray(offset, end);
          if (range.byteLength > 0) yield range;
        }
        return;
      }
      yield* fs.cat(parsed, { offset: options.offset, length: options.length, signal: options.signal, offline: true });
    } catch (err) {
      throw mapReadError(err, cid, where);
    }
  }

  const node: IpfsNode = {
    gcLock,
    blockstore,
    async getBlock(cid, signal) {
      assertOpen();
      try {
        return await collect(blockstore.get(cid, { signal }));
      } catch (err) {
        throw mapReadError(err, cid.toString(), where);
      }
    },
    async hasBlock(cid) {
      assertOpen();
      return blocks.has(cid);
    },
    async deleteBlock(cid) {
      assertOpen();
      recent.forget(blockKey(cid));
      await blocks.delete(cid);
    },
    async *blockSizes() {
      assertOpen();
      for await (const value of blocks.db.values()) yield value.byteLength;
    },
    async pin(cid) {
      assertOpen();
      await putPinEntry(pinKey(cid).toString(), new Uint8Array());
    },
    async unpin(cid) {
      assertOpen();
      if (!(await datastore.has(pinKey(cid)))) return false;
      await datastore.delete(pinKey(cid));
      return true;
    },
    async isPinned(cid) {
      assertOpen();
      return datastore.has(pinKey(cid));
    },
    async *pins() {
      assertOpen();
      for await (const key of datastore.queryKeys({ prefix: PINS_PREFIX })) yield CID.parse(key.baseNamespace());
    },
  };

  return {
    dir,
    node,
    add,
    addMany,
    cat,
    async put(bytes) {
      return (await add(bytes)).cid;
    },
    async putMany(blobs) {
      return (await addMany(blobs)).map((added) => added.cid);
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
      try {
        await Promise.all([blocks.close(), datastore.close()]);
      } finally {
        openDirs.delete(realDir);
      }
    },
  };
}

async function* oneChunk(block: Uint8Array): AsyncGenerator<Uint8Array> {
  yield block;
}

/** A block handed over as a stream of chunks, as one array. */
async function collect(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** blockstore-level's key for a block: its multihash in base32, upper case. */
function blockKey(cid: CID): string {
  return `/${base32upper.encode(cid.multihash.bytes)}`;
}

/**
 * Opens the store's LevelDB directly rather than through the store's open(),
 * which keeps only the message of the error and so hides LEVEL_LOCKED. The
 * options are the ones the blockstore-level and datastore-level open with.
 */
async function openLevel(db: LevelBlockstore["db"], dir: string): Promise<void> {
  try {
    await db.open({ createIfMissing: true, compression: false });
  } catch (err) {
    const cause: unknown = err instanceof Error ? err.cause : undefined;
    if (cause instanceof Error && "code" in cause && cause.code === "LEVEL_LOCKED") throw inUse(dir, err);
    throw err;
  }
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
