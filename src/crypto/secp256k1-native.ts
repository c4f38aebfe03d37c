/**
 * secp256k1 signing and public-key recovery over 32-byte digests, done by
 * libsecp256k1 (Bitcoin Core's C library, through the `secp256k1` npm
 * package's prebuilt N-API binding) where it loads, by @noble/curves where it
 * does not.
 *
 * Why native: a task costs the enclave two signatures and the SDK one
 * signature check, and a throughput run is CPU-bound. Measured on the 2-core
 * dev machine: a sign takes 0.05 ms native vs ~0.4 ms with viem's noble; a
 * recovery 0.07 ms vs ~2.3 ms with noble (and ~0.55 ms for the noble check
 * against a remembered key with precomputed tables that it replaces).
 *
 * The binding is loaded directly (`secp256k1/bindings`), not through the
 * package's main entry, which silently falls back to the `elliptic` JS library
 * when the binding does not load. Where no prebuilt binary fits the platform,
 * this module falls back to noble, which gives the same bytes: both sign with
 * RFC 6979 deterministic nonces (no extra entropy) and return low s, and both
 * recover from high-s signatures as well as low-s ones. `secp256k1Backend`
 * says which one is in use. The fallback is correct but slow (~2.3 ms a
 * recovery): the npm tarball has binaries for linux-x64 (glibc and musl),
 * darwin-arm64 and win32-x64 only.
 *
 * Security assumptions: libsecp256k1 signs in constant time; its context is
 * randomized at load (blinding against side channels; it changes no output).
 * Private keys are passed to the binding per call and not kept by it. The
 * binary is the one the npm tarball ships, pinned by the lockfile's integrity
 * hash.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { CryptoError } from "./errors.ts";

export type Secp256k1Backend = "libsecp256k1" | "noble";
export type RecoveryId = 0 | 1;

export interface DigestSignature {
  /** r || s, 64 bytes, s low. */
  signature: Uint8Array;
  /** y parity of the nonce point: Ethereum's v is 27 + recoveryId. */
  recoveryId: RecoveryId;
}

/** What either backend does; every byte array is checked for length before it gets here. */
export interface Secp256k1Operations {
  sign(digest: Uint8Array, privateKey: Uint8Array): DigestSignature;
  /** The 65-byte uncompressed key (0x04 || x || y), or undefined when (r, s, recoveryId) recovers none. */
  recover(signature: Uint8Array, recoveryId: RecoveryId, digest: Uint8Array): Uint8Array | undefined;
  /** The 65-byte uncompressed public key. */
  publicKey(privateKey: Uint8Array): Uint8Array;
}

/** The part of the `secp256k1` package's API (v5) used here. */
interface LibSecp256k1 {
  contextRandomize(seed: Uint8Array): void;
  ecdsaSign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaRecover(signature: Uint8Array, recid: number, digest: Uint8Array, compressed: false): Uint8Array;
  publicKeyCreate(privateKey: Uint8Array, compressed: false): Uint8Array;
}

/** The same operations by @noble/curves, the fallback; exported so tests can hold both backends to the same bytes. */
export const nobleSecp256k1: Secp256k1Operations = {
  sign(digest, privateKey) {
    const recovered = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true, extraEntropy: false, format: "recovered" });
    return { signature: recovered.slice(1), recoveryId: recovered[0] as RecoveryId };
  },
  recover(signature, recoveryId, digest) {
    const recovered = new Uint8Array(65);
    recovered[0] = recoveryId;
    recovered.set(signature, 1);
    try {
      return secp256k1.Point.fromBytes(secp256k1.recoverPublicKey(recovered, digest, { prehash: false })).toBytes(false);
    } catch {
      return undefined;
    }
  },
  publicKey: (privateKey) => secp256k1.getPublicKey(privateKey, false),
};

function libsecp256k1Operations(lib: LibSecp256k1): Secp256k1Operations {
  lib.contextRandomize(new Uint8Array(randomBytes(32)));
  return {
    sign(digest, privateKey) {
      const { signature, recid } = lib.ecdsaSign(digest, privateKey);
      return { signature, recoveryId: recid as RecoveryId };
    },
    recover(signature, recoveryId, digest) {
      try {
        return lib.ecdsaRecover(signature, recoveryId, digest, false);
      } catch {
        return undefined; // r or s out of range or zero, or no point with x = r
      }
    },
    publicKey: (privateKey) => lib.publicKeyCreate(privateKey, false),
  };
}

function loadLibsecp256k1(): Secp256k1Operations | undefined {
  try {
    return libsecp256k1Operations(createRequire(import.meta.url)("secp256k1/bindings") as LibSecp256k1);
  } catch {
    return undefined; // no prebuilt binary for this platform or Node ABI
  }
}

const native = loadLibsecp256k1();
const backend: Secp256k1Operations = native ?? nobleSecp256k1;

/** Which implementation signs and recovers in this process. */
export const secp256k1Backend: Secp256k1Backend = native ? "libsecp256k1" : "noble";

/** libsecp256k1's operations, or undefined where the binding did not load (for tests comparing backends). */
export const libsecp256k1: Secp256k1Operations | undefined = native;

/** Signs a 32-byte digest (no hashing): deterministic (RFC 6979), low s. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): DigestSignature {
  mustBeLength(digest, 32, "a secp256k1 signature digest");
  mustBeLength(privateKey, 32, "a secp256k1 private key");
  try {
    return backend.sign(digest, privateKey);
  } catch (cause) {
    throw new CryptoError("INVALID_KEY", "secp256k1 private key is zero or not below the group order", { cause });
  }
}

/**
 * The uncompressed public key (65 bytes) that signed `digest` with r || s
 * (64 bytes) and `recoveryId`, or undefined when they recover none. High s is
 * accepted, with the recovery id that matches it.
 */
export function recoverPublicKey(signature: Uint8Array, recoveryId: RecoveryId, digest: Uint8Array): Uint8Array | undefined {
  mustBeLength(signature, 64, "a secp256k1 r || s signature");
  mustBeLength(digest, 32, "a secp256k1 signature digest");
  if (recoveryId !== 0 && recoveryId !== 1) throw new CryptoError("INVALID_ARGUMENT", `a secp256k1 recovery id is 0 or 1, got ${String(recoveryId)}`);
  return backend.recover(signature, recoveryId, digest);
}

/** The uncompressed public key (65 bytes) of a 32-byte private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  mustBeLength(privateKey, 32, "a secp256k1 private key");
  try {
    return backend.publicKey(privateKey);
  } catch (cause) {
    throw new CryptoError("INVALID_KEY", "secp256k1 private key is zero or not below the group order", { cause });
  }
}

function mustBeLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new CryptoError("INVALID_ARGUMENT", `${what} is ${length} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
  }
}
