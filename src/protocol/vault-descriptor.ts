/**
 * The share set descriptor on the wire. It is public (no share, salt or
 * secret: only commitments) and reaches enclaves and owners through hosts
 * and IPFS, so it is parsed strictly before anything hashes it, and then
 * checked against the root the chain holds (checkDescriptor).
 */
import type { Address, Hex } from "viem";
import { VaultShareError } from "./vault-errors.ts";
import { MAX_SHARES, MIN_THRESHOLD, type ShareSetDescriptor } from "./vault-shares.ts";

/** The descriptor as JSON: bigints as decimal strings. */
export interface ShareSetDescriptorJson {
  binding: { chainId: string; vault: Address; tokenId: string };
  version: string;
  threshold: number;
  shareCount: number;
  secretCommitment: Hex;
  shareCommitments: Hex[];
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DECIMAL = /^[0-9]{1,78}$/;
const UINT256_MAX = 2n ** 256n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

// Checked by hand rather than with a zod schema: every enclave parses one descriptor per share it stores or
// imports, and zod's machinery was a twentieth of a vault enclave's CPU in the sync benchmark.

function malformed(field: string, what: string): never {
  throw new VaultShareError("INVALID_ARGUMENT", `the share set description is not well-formed: ${field} ${what}`, { details: { field } });
}

function objectAt(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) malformed(field, "is not an object");
  return value as Record<string, unknown>;
}

/** A bigint, or its decimal string, within [min, max]. */
function uintAt(value: unknown, field: string, min: bigint, max: bigint): bigint {
  const n = typeof value === "bigint" ? value : typeof value === "string" && DECIMAL.test(value) ? BigInt(value) : malformed(field, "is not a decimal integer");
  if (n < min || n > max) malformed(field, `is not between ${min} and ${max}`);
  return n;
}

function countAt(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < MIN_THRESHOLD || value > MAX_SHARES) malformed(field, `is not an integer from ${MIN_THRESHOLD} to ${MAX_SHARES}`);
  return value;
}

function bytes32At(value: unknown, field: string): Hex {
  if (typeof value !== "string" || !BYTES32.test(value)) malformed(field, "is not 32 bytes of 0x-prefixed hex");
  return value as Hex;
}

/** The descriptor from JSON (bigints as decimal strings) or as it is; unknown fields are ignored. */
export function parseShareSetDescriptor(raw: unknown): ShareSetDescriptor {
  const d = objectAt(raw, "the description");
  const b = objectAt(d.binding, "binding");
  if (typeof b.vault !== "string" || !ADDRESS.test(b.vault)) malformed("binding.vault", "is not an address");
  const threshold = countAt(d.threshold, "threshold");
  const shareCount = countAt(d.shareCount, "shareCount");
  if (threshold > shareCount) malformed("threshold", `(${threshold}) is above shareCount (${shareCount})`);
  const commitments = d.shareCommitments;
  if (!Array.isArray(commitments) || commitments.length !== shareCount) malformed("shareCommitments", `is not a list of ${shareCount} commitments, one per share`);
  return {
    binding: { chainId: uintAt(b.chainId, "binding.chainId", 0n, UINT256_MAX), vault: b.vault as Address, tokenId: uintAt(b.tokenId, "binding.tokenId", 0n, UINT256_MAX) },
    version: uintAt(d.version, "version", 1n, UINT64_MAX),
    threshold,
    shareCount,
    secretCommitment: bytes32At(d.secretCommitment, "secretCommitment"),
    shareCommitments: commitments.map((c: unknown, i) => bytes32At(c, `shareCommitments[${i}]`)),
  };
}

export function shareSetDescriptorJson(d: ShareSetDescriptor): ShareSetDescriptorJson {
  return {
    binding: { chainId: String(d.binding.chainId), vault: d.binding.vault, tokenId: String(d.binding.tokenId) },
    version: String(d.version),
    threshold: d.threshold,
    shareCount: d.shareCount,
    secretCommitment: d.secretCommitment,
    shareCommitments: [...d.shareCommitments],
  };
}
