/**
 * Checking that a 65-byte secp256k1 signature (r || s || v) over a 32-byte
 * digest was made by an expected Ethereum address, without recovering the
 * public key every time.
 *
 * The first check for an address recovers the signer's public key, as viem's
 * recoverAddress does, and accepts only if the key's address is the expected
 * one; the key is then remembered for that address. Later checks compute
 * R = u1·G + u2·Q against the remembered key Q and accept only if R.x = r and
 * R's y parity is v's recovery bit. R is exactly the point recovery
 * reconstructs from (r, v) (sR = hG + rQ), so this accepts exactly the
 * (r, s, v) that recovering and comparing addresses accepts, v included: a
 * signature with the other v recovers another key and is refused on both
 * paths. High s is accepted with its matching v, as viem's recovery accepts
 * it (the chain's ECDSA.tryRecover is what rejects high s on completions).
 * A remembered key that does not verify falls back to recovery, so refusals
 * and the recovered address they report are those of recovery.
 *
 * The cache holds facts, not trust: "this key has this address" is true for
 * every caller, so one cache is shared by the whole process (`signerKeys`).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE } from "@noble/curves/utils.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { CryptoError } from "./errors.ts";

const { Point } = secp256k1;
const { Fn } = Point;
type CurvePoint = InstanceType<typeof Point>;

/**
 * Multiplication tables for a remembered key (wNAF window 6): ~120 KiB and
 * ~18 ms to build, then a check costs ~0.45 ms instead of ~1 ms. A key gets
 * them once it has been checked TABLES_AFTER_CHECKS times, so building them
 * costs less than the checks that earned them; a key holding tables gives
 * them up only when the cache forgets it or it has been idle for
 * STALE_AFTER_CHECKS checks and another key needs the slot, so a working set
 * larger than maxTables cannot make the cache rebuild tables on every check.
 */
const TABLE_WINDOW = 6;
const TABLES_AFTER_CHECKS = 32;
const STALE_AFTER_CHECKS = 1024;

/**
 * A copy of G with wider tables than noble's shared BASE (window 8 vs 6: ~0.09 ms
 * less per check, for ~600 KiB and ~70 ms once). Built at the first check
 * against a remembered key, so one-shot verifiers never pay for it.
 */
let wideGenerator: CurvePoint | undefined;
function generator(): CurvePoint {
  wideGenerator ??= Point.fromAffine(Point.BASE.toAffine()).precompute(8, false);
  return wideGenerator;
}

/** `recovered`: the address the signature recovers to (lowercase), or undefined when it recovers none. */
export type SignerCheck = { ok: true } | { ok: false; recovered: string | undefined };

export interface SignerKeyCacheOptions {
  /** Addresses whose public keys are remembered; the least recently used is forgotten first. Default 4096. */
  maxKeys?: number;
  /** Of those, how many keep precomputed multiplication tables (~120 KiB each). Default 64. */
  maxTables?: number;
}

interface RememberedKey {
  point: CurvePoint;
  tables: boolean;
  /** Checks against this key since it was remembered or last gave its tables up. */
  checks: number;
  /** The cache's check count at this key's last check. */
  lastCheck: number;
}

interface ParsedSignature {
  r: bigint;
  s: bigint;
  recoveryBit: 0 | 1;
  /** [recovery bit, r, s], noble's "recovered" format. */
  recoveredBytes: Uint8Array;
}

export class SignerKeyCache {
  readonly #maxKeys: number;
  readonly #maxTables: number;
  /** Lowercase address → key, in least-recently-used-first order. */
  readonly #keys = new Map<string, RememberedKey>();
  /** Addresses whose key has tables, least-recently-used first. */
  readonly #tables = new Set<string>();
  #recoveries = 0;
  #keyVerifications = 0;

  constructor(options: SignerKeyCacheOptions = {}) {
    this.#maxKeys = positive(options.maxKeys ?? 4096, "maxKeys");
    this.#maxTables = positive(options.maxTables ?? 64, "maxTables");
  }

  /**
   * Whether `signature` (65 bytes r || s || v, v in {0, 1, 27, 28}) over the
   * 32-byte `digest` is by `expectedAddress` (0x-prefixed hex, any case).
   * Accepts exactly what recovering the signer's address and comparing accepts.
   */
  check(digest: Uint8Array, signature: Uint8Array, expectedAddress: string): SignerCheck {
    if (digest.length !== 32) throw new CryptoError("INVALID_ARGUMENT", `a secp256k1 signature digest is 32 bytes, got ${digest.length}`);
    if (!/^0x[0-9a-fA-F]{40}$/.test(expectedAddress)) throw new CryptoError("INVALID_ARGUMENT", `"${expectedAddress}" is not a 20-byte 0x-hex address`);
    const expected = expectedAddress.toLowerCase();
    const sig = parseSignature(signature);
    if (sig === undefined) return { ok: false, recovered: undefined };

    const remembered = this.#keys.get(expected);
    if (remembered !== undefined) {
      this.#keyVerifications++;
      this.#touch(expected, remembered);
      if (verifiesUnder(remembered.point, digest, sig)) return { ok: true };
    }

    this.#recoveries++;
    const key = recoverKey(digest, sig);
    if (key === undefined) return { ok: false, recovered: undefined };
    const recovered = addressOf(key);
    if (recovered !== expected) return { ok: false, recovered };
    if (remembered === undefined) this.#remember(expected, key);
    return { ok: true };
  }

  /** Keys remembered, how many have tables, and how many checks recovered or verified against a remembered key (for tests and metrics). */
  get stats(): { keys: number; tables: number; recoveries: number; keyVerifications: number } {
    return { keys: this.#keys.size, tables: this.#tables.size, recoveries: this.#recoveries, keyVerifications: this.#keyVerifications };
  }

  clear(): void {
    this.#keys.clear();
    this.#tables.clear();
    this.#recoveries = 0;
    this.#keyVerifications = 0;
  }

  #remember(address: string, point: CurvePoint): void {
    this.#keys.set(address, { point, tables: false, checks: 0, lastCheck: this.#keyVerifications });
    if (this.#keys.size > this.#maxKeys) {
      const oldest = this.#keys.keys().next().value as string;
      this.#keys.delete(oldest);
      this.#tables.delete(oldest);
    }
  }

  /** Marks a key most recently used, and gives it tables once it has earned them and a slot is free or stale. */
  #touch(address: string, key: RememberedKey): void {
    this.#keys.delete(address);
    this.#keys.set(address, key);
    key.lastCheck = this.#keyVerifications;
    if (key.tables) {
      this.#tables.delete(address);
      this.#tables.add(address);
      return;
    }
    if (++key.checks < TABLES_AFTER_CHECKS) return;
    if (this.#tables.size >= this.#maxTables) {
      const oldest = this.#tables.values().next().value as string;
      const holder = this.#keys.get(oldest)!;
      if (this.#keyVerifications - holder.lastCheck < STALE_AFTER_CHECKS) return;
      this.#tables.delete(oldest);
      // noble keeps tables per Point object: a fresh object of the same point has none.
      this.#keys.set(oldest, { point: Point.fromAffine(holder.point.toAffine()), tables: false, checks: 0, lastCheck: holder.lastCheck });
    }
    key.point = key.point.precompute(TABLE_WINDOW, false);
    key.tables = true;
    this.#tables.add(address);
  }
}

/** The process-wide cache the protocol's signature checks share. */
export const signerKeys = new SignerKeyCache();

/** r, s in [1, n-1] and v in {0, 1, 27, 28}, as viem's recovery requires; undefined otherwise. */
function parseSignature(signature: Uint8Array): ParsedSignature | undefined {
  if (signature.length !== 65) return undefined;
  const v = signature[64];
  const recoveryBit = v === 0 || v === 27 ? 0 : v === 1 || v === 28 ? 1 : undefined;
  if (recoveryBit === undefined) return undefined;
  const r = bytesToNumberBE(signature.subarray(0, 32));
  const s = bytesToNumberBE(signature.subarray(32, 64));
  if (!Fn.isValidNot0(r) || !Fn.isValidNot0(s)) return undefined;
  const recoveredBytes = new Uint8Array(65);
  recoveredBytes[0] = recoveryBit;
  recoveredBytes.set(signature.subarray(0, 64), 1);
  return { r, s, recoveryBit, recoveredBytes };
}

function recoverKey(digest: Uint8Array, sig: ParsedSignature): CurvePoint | undefined {
  try {
    return Point.fromBytes(secp256k1.recoverPublicKey(sig.recoveredBytes, digest, { prehash: false }));
  } catch {
    return undefined;
  }
}

/** R = u1·G + u2·Q must be the point recovery rebuilds from (r, v): x = r exactly and y of v's parity. */
function verifiesUnder(key: CurvePoint, digest: Uint8Array, sig: ParsedSignature): boolean {
  // The digest is as long as the group order, so bits2int is the plain big-endian number.
  const h = Fn.create(bytesToNumberBE(digest));
  const sInverse = Fn.inv(sig.s);
  const R = generator().multiplyUnsafe(Fn.mul(h, sInverse)).add(key.multiplyUnsafe(Fn.mul(sig.r, sInverse)));
  if (R.is0()) return false;
  const { x, y } = R.toAffine();
  return x === sig.r && Number(y & 1n) === sig.recoveryBit;
}

function addressOf(key: CurvePoint): string {
  const uncompressed = key.toBytes(false);
  return `0x${Buffer.from(keccak_256(uncompressed.subarray(1)).subarray(12)).toString("hex")}`;
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new CryptoError("INVALID_ARGUMENT", `${name} must be a positive integer, got ${n}`);
  return n;
}
