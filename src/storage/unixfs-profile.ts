/**
 * How bytes become a CID, fixed so that every store (and a stock Kubo node)
 * gives the same CID for the same bytes: the parameters of
 * `ipfs add --cid-version=1 --raw-leaves --chunker=size-262144` — UnixFS file,
 * CIDv1, raw leaves of 256 KiB, balanced DAG of at most 174 links per node,
 * sha2-256. A blob of one chunk is a single raw block (`bafkrei…`).
 */
import { importFile, type ImporterOptions, type WritableStorage } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import { StorageError } from "./blob-store.ts";

export const CHUNK_SIZE = 262_144;
export const MAX_LINKS_PER_NODE = 174;
/** Kubo's `chunker` parameter for the same chunking. */
export const KUBO_CHUNKER = `size-${CHUNK_SIZE}`;

const RAW_CODEC = 0x55;
const DAG_PB_CODEC = 0x70;
const SHA2_256 = 0x12;

export function importerOptions(): ImporterOptions {
  return {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: CHUNK_SIZE }),
    layout: balanced({ maxChildrenPerNode: MAX_LINKS_PER_NODE }),
    reduceSingleLeafToSelf: true,
  };
}

export interface ImportedBlob {
  cid: CID;
  /** Cumulative size of the DAG (what Kubo reports as `Size`). */
  dagSize: bigint;
}

/**
 * Chunks the bytes into UnixFS blocks, writing each block to `blockstore`.
 *
 * A blob of one chunk or less (the empty blob too) is, with raw leaves and a
 * single leaf reduced to itself, exactly one raw block: its CID is the raw
 * codec over the bytes' sha2-256 and its DAG size is its length. That case is
 * done here without the importer's machinery; the tests check it against the
 * importer.
 */
export async function importBytes(bytes: Uint8Array, blockstore: WritableStorage): Promise<ImportedBlob> {
  if (bytes.byteLength <= CHUNK_SIZE) {
    const cid = rawBlockCid(bytes);
    await blockstore.put(cid, bytes);
    return { cid, dagSize: BigInt(bytes.byteLength) };
  }
  const result = await importFile({ content: bytes }, blockstore, importerOptions());
  return { cid: result.cid, dagSize: result.size };
}

/** The CID `put` would return for these bytes, computed without storing anything. */
export async function cidOfBytes(bytes: Uint8Array): Promise<CID> {
  if (bytes.byteLength <= CHUNK_SIZE) return rawBlockCid(bytes);
  const discard = { put: async (cid: CID) => cid };
  return (await importBytes(bytes, discard)).cid;
}

/**
 * The CID of a blob of at most one chunk whose SHA-256 is `sha256` (32 bytes): one raw block, so the digest a
 * contract records (a provenance digest) names its blob on IPFS. A larger blob has another CID.
 */
export function singleChunkCidOfDigest(sha256: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, sha256));
}

function rawBlockCid(bytes: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, createHash("sha256").update(bytes).digest()));
}

/**
 * Parses a blob CID: CIDv1, raw or dag-pb, sha2-256, as put returns. Blocks
 * are verified against sha2-256 on every read, and CIDv0 blobs (non-raw
 * leaves) could not be re-derived from their bytes by kubo-store.ts.
 */
export function parseBlobCid(cid: string): CID {
  let parsed: CID;
  try {
    parsed = CID.parse(cid.trim());
  } catch (err) {
    throw new StorageError(
      "INVALID_CID",
      `"${cid.slice(0, 100)}" is not a valid CID. Pass the CID string returned by put (e.g. bafkrei… or bafybei…).`,
      { cause: err },
    );
  }
  if (parsed.version !== 1) {
    throw new StorageError(
      "INVALID_CID",
      `CID ${cid} is a CIDv0; Cloister blobs are CIDv1. Re-add the blob with cid-version=1 and raw leaves, or pass the CID put returned.`,
    );
  }
  if (parsed.code !== RAW_CODEC && parsed.code !== DAG_PB_CODEC) {
    throw new StorageError(
      "INVALID_CID",
      `CID ${cid} has codec 0x${parsed.code.toString(16)}, not raw or dag-pb, so it does not name a blob. Pass a CID returned by put.`,
    );
  }
  if (parsed.multihash.code !== SHA2_256) {
    throw new StorageError(
      "INVALID_CID",
      `CID ${cid} uses multihash 0x${parsed.multihash.code.toString(16)}; only sha2-256 is supported. Re-add the blob with the default hash.`,
    );
  }
  return parsed;
}
