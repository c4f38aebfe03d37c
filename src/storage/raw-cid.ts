/**
 * The CID of a blob of at most one chunk, from its SHA-256 alone: such a blob
 * is one raw block (unixfs-profile.ts), so its CID is the raw codec over the
 * digest. Pipelines use it to find a package or a cursor state from the
 * digest the chain stores.
 */
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";

const RAW_CODEC = 0x55;
const SHA2_256 = 0x12;

export function rawCidOfDigest(sha256: `0x${string}`): string {
  const bytes = Buffer.from(sha256.slice(2), "hex");
  if (bytes.length !== 32) throw new RangeError(`rawCidOfDigest: a SHA-256 digest is 32 bytes, got ${bytes.length}`);
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, new Uint8Array(bytes))).toString();
}
