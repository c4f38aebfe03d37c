/**
 * Verifiable k-of-n shares of a vault secret (issue 15). The split and the
 * recombination are the audited `shamir-secret-sharing` package (GF(2^8),
 * byte by byte, random distinct x-coordinates carried in each share's last
 * byte); this module adds what that package does not have: commitments that
 * let the enclave storing a share, a peer fetching it and the owner combining
 * shares each detect a corrupted or substituted share.
 *
 * Hash commitments, not Feldman: Feldman needs the shares to be scalars of a
 * prime-order group, while the audited package shares each byte over GF(2^8);
 * making them fit would mean our own Shamir over the curve's scalar field,
 * i.e. giving up the audited code. What Feldman adds (checking a share against
 * the polynomial without knowing the others, so a dishonest dealer is caught)
 * matters less here: the dealer is the owner, whose own secret is at stake,
 * and the recombined secret is checked against its own commitment.
 *
 * - What is shared is the payload salt || uint16 length || secret || zero
 *   padding (a fresh 32-byte salt first, then the secret padded to a multiple
 *   of 32 bytes so shares and ciphertexts do not tell its exact length); the
 *   salt is known only to whoever holds k shares.
 * - secretCommitment = SHA-256(tag || abi(chainId, vault, tokenId, payload)):
 *   hiding (the salt is unknown below k shares) and the same at every version,
 *   since re-sharing keeps salt and secret.
 * - shareCommitment(slot) = SHA-256(tag || abi(chainId, vault, tokenId, version, slot, shareSalt, share)):
 *   each share carries its own random 32-byte salt so that a short secret's
 *   shares cannot be guessed from their public commitments.
 * - root = SHA-256(tag || abi(chainId, vault, tokenId, version, threshold, shareCount, secretCommitment, shareCommitments[])):
 *   the one bytes32 the vault contract stores per token and version. The
 *   descriptor (everything under the root) is public and travels beside the
 *   ciphertexts; anyone checks it against the root they read from the chain.
 */
import { randomBytes } from "node:crypto";
import { combine, split } from "shamir-secret-sharing";
import type { Address, Hex } from "viem";
import { abiEncode, addressWord, bytes32Word, uintWord } from "./abi-encode.ts";
import { sha256 } from "../crypto/sha256.ts";
import { DOMAIN } from "./domains.ts";
import { VaultShareError, type VaultShareErrorCode } from "./vault-errors.ts";
import { tagged } from "./binding.ts";

/** Which secret: a token of one vault contract on one chain. */
export interface VaultBinding {
  chainId: bigint;
  vault: Address;
  tokenId: bigint;
}

/** The public description of one share set: what the root commits to. */
export interface ShareSetDescriptor {
  binding: VaultBinding;
  /** 1 for the first sharing; each re-sharing increments it. */
  version: bigint;
  threshold: number;
  shareCount: number;
  secretCommitment: Hex;
  /** One per slot, slot i at index i. */
  shareCommitments: readonly Hex[];
}

/** One plaintext share: what an envelope carries and a slot enclave seals. */
export interface VaultShare {
  /** 0-based slot of the cluster that holds it. */
  slot: number;
  /** Random 32 bytes that blind this share's commitment. */
  salt: Uint8Array;
  /** The Shamir share as `shamir-secret-sharing` makes it (y bytes, then the x-coordinate). */
  share: Uint8Array;
}

export interface ShareSet {
  descriptor: ShareSetDescriptor;
  root: Hex;
  shares: VaultShare[];
}

export interface SplitOptions {
  threshold: number;
  shareCount: number;
  /** Defaults to 1. */
  version?: bigint;
}

export const SALT_BYTES = 32;
/** Secrets are padded (after a 2-byte length) to a multiple of this. */
export const PAD_BYTES = 32;
/** Large enough for any key or seed phrase; a bigger secret goes in a blob whose key is the vault secret. */
export const MAX_SECRET_BYTES = 4096;
/** The audited package's limits: at least 2, at most 255 shares and threshold. */
export const MIN_THRESHOLD = 2;
export const MAX_SHARES = 255;

function taggedHash(tag: string, body: Uint8Array): Hex {
  return sha256(tagged(tag, body));
}

function fail(code: VaultShareErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new VaultShareError(code, message, details ? { details } : {});
}

function checkParameters(threshold: number, shareCount: number): void {
  if (!Number.isInteger(threshold) || !Number.isInteger(shareCount) || threshold < MIN_THRESHOLD || shareCount > MAX_SHARES || threshold > shareCount) {
    fail("INVALID_ARGUMENT", `threshold and share count must be integers with ${MIN_THRESHOLD} <= threshold <= shares <= ${MAX_SHARES}`, { threshold, shareCount });
  }
}

function checkVersion(version: bigint): void {
  if (version < 1n || version >= 2n ** 64n) fail("INVALID_ARGUMENT", "the share set version must be between 1 and 2^64-1", { version: String(version) });
}

/** salt || uint16 length || secret || zeros, to a multiple of PAD_BYTES after the salt. */
function encodePayload(secret: Uint8Array): Uint8Array {
  const body = Math.ceil((2 + secret.length) / PAD_BYTES) * PAD_BYTES;
  const out = new Uint8Array(SALT_BYTES + body);
  out.set(randomBytes(SALT_BYTES), 0);
  new DataView(out.buffer).setUint16(SALT_BYTES, secret.length);
  out.set(secret, SALT_BYTES + 2);
  return out;
}

/** The secret in a payload whose commitment already matched; undefined if its length field or padding is malformed. */
function decodePayload(payload: Uint8Array): Uint8Array | undefined {
  if (payload.length < SALT_BYTES + PAD_BYTES || (payload.length - SALT_BYTES) % PAD_BYTES !== 0) return undefined;
  const length = new DataView(payload.buffer, payload.byteOffset).getUint16(SALT_BYTES);
  const end = SALT_BYTES + 2 + length;
  if (length < 1 || end > payload.length || end + PAD_BYTES <= payload.length || payload.subarray(end).some((b) => b !== 0)) return undefined;
  return payload.slice(SALT_BYTES + 2, end);
}

export function secretCommitment(binding: VaultBinding, payload: Uint8Array): Hex {
  return taggedHash(DOMAIN.vaultSecret, abiEncode([uintWord(binding.chainId, 256), addressWord(binding.vault), uintWord(binding.tokenId, 256), { bytes: payload }]));
}

export function shareCommitment(binding: VaultBinding, version: bigint, share: VaultShare): Hex {
  if (share.salt.length !== SALT_BYTES) fail("INVALID_ARGUMENT", `a share's salt must be ${SALT_BYTES} bytes`, { slot: share.slot });
  return taggedHash(
    DOMAIN.vaultShare,
    abiEncode([uintWord(binding.chainId, 256), addressWord(binding.vault), uintWord(binding.tokenId, 256), uintWord(version, 64), uintWord(share.slot, 8), { word: share.salt }, { bytes: share.share }]),
  );
}

/** The bytes32 the vault contract stores for this token and version. */
export function shareSetRoot(d: ShareSetDescriptor): Hex {
  checkVersion(d.version);
  checkParameters(d.threshold, d.shareCount);
  if (d.shareCommitments.length !== d.shareCount) fail("INVALID_ARGUMENT", "a share set needs one commitment per share", { shareCount: d.shareCount, commitments: d.shareCommitments.length });
  return taggedHash(
    DOMAIN.vaultRoot,
    abiEncode([
      uintWord(d.binding.chainId, 256),
      addressWord(d.binding.vault),
      uintWord(d.binding.tokenId, 256),
      uintWord(d.version, 64),
      uintWord(d.threshold, 8),
      uintWord(d.shareCount, 8),
      bytes32Word(d.secretCommitment),
      { words: d.shareCommitments.map((c) => bytes32Word(c).word) },
    ]),
  );
}

/** Throws ROOT_MISMATCH unless `d` is the share set the chain's `root` commits to. */
export function checkDescriptor(d: ShareSetDescriptor, root: Hex): void {
  const actual = shareSetRoot(d);
  if (actual.toLowerCase() !== root.toLowerCase()) {
    fail("ROOT_MISMATCH", "the share set description does not match the commitment root on chain; fetch it again from another source", {
      tokenId: String(d.binding.tokenId),
      version: String(d.version),
      expected: root,
      actual,
    });
  }
}

/**
 * Splits a payload (salt, length, secret, padding) into a committed share set.
 * Used by splitSecret and by re-sharing, which keeps the payload so the
 * secret commitment stays the same.
 */
export async function splitPayload(binding: VaultBinding, payload: Uint8Array, opts: SplitOptions): Promise<ShareSet> {
  const version = opts.version ?? 1n;
  checkVersion(version);
  checkParameters(opts.threshold, opts.shareCount);
  const raw = await split(payload, opts.shareCount, opts.threshold);
  const shares = raw.map((share, slot) => ({ slot, salt: new Uint8Array(randomBytes(SALT_BYTES)), share }));
  const descriptor: ShareSetDescriptor = {
    binding,
    version,
    threshold: opts.threshold,
    shareCount: opts.shareCount,
    secretCommitment: secretCommitment(binding, payload),
    shareCommitments: shares.map((s) => shareCommitment(binding, version, s)),
  };
  return { descriptor, root: shareSetRoot(descriptor), shares };
}

/** Splits a secret k-of-n for a token: share i goes to slot i of every cluster. */
export async function splitSecret(binding: VaultBinding, secret: Uint8Array, opts: SplitOptions): Promise<ShareSet> {
  if (secret.length < 1 || secret.length > MAX_SECRET_BYTES) fail("INVALID_ARGUMENT", `a vault secret must be 1 to ${MAX_SECRET_BYTES} bytes`, { length: secret.length });
  const payload = encodePayload(secret);
  try {
    return await splitPayload(binding, payload, opts);
  } finally {
    payload.fill(0);
  }
}

/**
 * What the enclave that stores a share, the peer that fetches it and the
 * owner who combines shares each run: the descriptor matches the chain's
 * root and the share matches its slot's commitment. Throws TAMPERED_SHARE
 * for any other bytes, salt or slot.
 */
export function verifyShare(d: ShareSetDescriptor, root: Hex, share: VaultShare): void {
  checkDescriptor(d, root);
  checkShareAgainst(d, share);
}

/**
 * The share half of verifyShare, for a caller that has just run checkDescriptor on `d` against the chain's
 * root itself (an enclave storing a batch): the root is not computed a second time per share.
 */
export function checkShareAgainst(d: ShareSetDescriptor, share: VaultShare): void {
  if (!Number.isInteger(share.slot) || share.slot < 0 || share.slot >= d.shareCount) {
    fail("INVALID_ARGUMENT", `slot ${share.slot} is not a slot of this share set (0 to ${d.shareCount - 1})`, { slot: share.slot, shareCount: d.shareCount });
  }
  if (share.salt.length !== SALT_BYTES || shareCommitment(d.binding, d.version, share).toLowerCase() !== d.shareCommitments[share.slot]!.toLowerCase()) {
    fail("TAMPERED_SHARE", `the share for slot ${share.slot} does not match its commitment: it was corrupted or substituted, or belongs to another version`, {
      tokenId: String(d.binding.tokenId),
      version: String(d.version),
      slot: share.slot,
    });
  }
}

export interface RejectedShare {
  slot: number;
  code: VaultShareErrorCode;
}

/**
 * Recombines the payload from shares checked against `d` (itself checked
 * against `root`): bad shares are set aside, reported in NOT_ENOUGH_SHARES
 * (with `alreadyRejected`, those the caller could not even open) if fewer
 * than k good ones remain; the result must match the secret commitment.
 */
export async function combinePayload(d: ShareSetDescriptor, root: Hex, shares: readonly VaultShare[], alreadyRejected: readonly RejectedShare[] = []): Promise<Uint8Array> {
  checkDescriptor(d, root);
  const good = new Map<number, VaultShare>();
  const rejected: RejectedShare[] = [...alreadyRejected];
  for (const share of shares) {
    try {
      checkShareAgainst(d, share);
      good.set(share.slot, share);
    } catch (error) {
      if (!(error instanceof VaultShareError)) throw error;
      rejected.push({ slot: share.slot, code: error.code });
    }
  }
  if (good.size < d.threshold) {
    fail("NOT_ENOUGH_SHARES", `${good.size} valid shares of the ${d.threshold} needed; ask more slot enclaves (another cluster) for theirs`, {
      tokenId: String(d.binding.tokenId),
      version: String(d.version),
      valid: [...good.keys()],
      rejected,
      threshold: d.threshold,
    });
  }
  const chosen = [...good.values()].slice(0, d.threshold).map((s) => s.share);
  let payload: Uint8Array;
  try {
    payload = await combine(chosen);
  } catch (cause) {
    throw new VaultShareError("SECRET_MISMATCH", "the committed shares do not recombine (malformed share set); the dealer was dishonest", { cause, details: { tokenId: String(d.binding.tokenId) } });
  }
  if (secretCommitment(d.binding, payload).toLowerCase() !== d.secretCommitment.toLowerCase()) {
    fail("SECRET_MISMATCH", "the shares recombine to a secret that does not match its commitment; the share set was not dealt from one secret", {
      tokenId: String(d.binding.tokenId),
      version: String(d.version),
    });
  }
  return payload;
}

/** The owner's side: k checked shares back to the secret. */
export async function combineShares(d: ShareSetDescriptor, root: Hex, shares: readonly VaultShare[], alreadyRejected: readonly RejectedShare[] = []): Promise<Uint8Array> {
  const payload = await combinePayload(d, root, shares, alreadyRejected);
  const secret = decodePayload(payload);
  payload.fill(0);
  if (!secret) fail("SECRET_MISMATCH", "the recombined secret is not well-formed (length or padding); the share set was dealt dishonestly", { tokenId: String(d.binding.tokenId) });
  return secret;
}
