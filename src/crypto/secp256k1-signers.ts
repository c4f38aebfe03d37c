/**
 * Checking that a 65-byte secp256k1 signature (r || s || v) over a 32-byte
 * digest was made by an expected Ethereum address, without hashing the
 * recovered public key into an address every time.
 *
 * Every check recovers the signer's public key from (r, s, v) with
 * libsecp256k1 (~0.07 ms; see secp256k1-native.ts, which falls back to noble),
 * as viem's recoverAddress does. The first check for an address derives the
 * key's address (keccak-256) and accepts only if it is the expected one; the
 * key's bytes are then remembered for that address. Later checks accept when
 * the recovered key equals the remembered one. Both paths compare what the
 * same recovery returned, so the cache accepts exactly the (r, s, v) that
 * recovering and comparing addresses accepts, v included: a signature with the
 * other v recovers another key and is refused. High s is accepted with its
 * matching v, as viem's recovery accepts it (the chain's ECDSA.tryRecover is
 * what rejects high s on completions). A recovered key that is not the
 * remembered one is hashed to the address the refusal reports.
 *
 * The cache holds facts, not trust: "this key has this address" is true for
 * every caller, so one cache is shared by the whole process (`signerKeys`).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE } from "@noble/curves/utils.js";
import { bytesEqual } from "./bytes.ts";
import { CryptoError } from "./errors.ts";
import { keccak256 } from "./keccak.ts";
import { recoverPublicKey, type RecoveryId } from "./secp256k1-native.ts";

const { Fn } = secp256k1.Point;

/** `recovered`: the address the signature recovers to (lowercase), or undefined when it recovers none. */
export type SignerCheck = { ok: true } | { ok: false; recovered: string | undefined };

export interface SignerKeyCacheOptions {
  /** Addresses whose public keys (65 bytes each) are remembered; the least recently used is forgotten first. Default 4096. */
  maxKeys?: number;
}

export class SignerKeyCache {
  readonly #maxKeys: number;
  /** Lowercase address → uncompressed public key, in least-recently-used-first order. */
  readonly #keys = new Map<string, Uint8Array>();
  #keyMatches = 0;
  #addressDerivations = 0;

  constructor(options: SignerKeyCacheOptions = {}) {
    this.#maxKeys = positive(options.maxKeys ?? 4096, "maxKeys");
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
    const recoveryId = parseSignature(signature);
    if (recoveryId === undefined) return { ok: false, recovered: undefined };
    const key = recoverPublicKey(signature.subarray(0, 64), recoveryId, digest);
    if (key === undefined) return { ok: false, recovered: undefined };

    const remembered = this.#keys.get(expected);
    if (remembered !== undefined && bytesEqual(remembered, key)) {
      this.#keyMatches++;
      this.#keys.delete(expected);
      this.#keys.set(expected, remembered);
      return { ok: true };
    }
    this.#addressDerivations++;
    const recovered = addressOf(key);
    if (recovered !== expected) return { ok: false, recovered };
    this.#remember(expected, key);
    return { ok: true };
  }

  /**
   * Keys remembered; checks whose recovered key was the remembered one
   * (`keyMatches`), and checks that hashed the recovered key into an address
   * because none was remembered or it was another key (`addressDerivations`).
   * For tests and metrics.
   */
  get stats(): { keys: number; keyMatches: number; addressDerivations: number } {
    return { keys: this.#keys.size, keyMatches: this.#keyMatches, addressDerivations: this.#addressDerivations };
  }

  clear(): void {
    this.#keys.clear();
    this.#keyMatches = 0;
    this.#addressDerivations = 0;
  }

  #remember(address: string, key: Uint8Array): void {
    this.#keys.set(address, key);
    if (this.#keys.size > this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value as string);
  }
}

/** The process-wide cache the protocol's signature checks share. */
export const signerKeys = new SignerKeyCache();

/** The recovery id when r, s are in [1, n-1] and v in {0, 1, 27, 28}, as viem's recovery requires; undefined otherwise. */
function parseSignature(signature: Uint8Array): RecoveryId | undefined {
  if (signature.length !== 65) return undefined;
  const v = signature[64];
  const recoveryId = v === 0 || v === 27 ? 0 : v === 1 || v === 28 ? 1 : undefined;
  if (recoveryId === undefined) return undefined;
  if (!Fn.isValidNot0(bytesToNumberBE(signature.subarray(0, 32))) || !Fn.isValidNot0(bytesToNumberBE(signature.subarray(32, 64)))) return undefined;
  return recoveryId;
}

function addressOf(uncompressedKey: Uint8Array): string {
  return `0x${keccak256(uncompressedKey.subarray(1)).slice(26)}`;
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new CryptoError("INVALID_ARGUMENT", `${name} must be a positive integer, got ${n}`);
  return n;
}
