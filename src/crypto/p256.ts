/**
 * ECDSA P-256 keys, as the enclave's provenance signing key (DSSE) and its
 * attested-TLS key use them. Public keys travel as SPKI DER (hex with 0x in
 * JSON): the form X.509 certificates, DSSE/sigstore verifiers, OpenSSL and
 * Python's `cryptography` load as is. Private keys are the raw 32-byte scalar
 * (what the enclave seals).
 *
 * Key generation and public-key derivation use @noble/curves; signing uses a
 * node:crypto KeyObject (OpenSSL), several times faster than noble per
 * signature on the task path. Signatures are ASN.1 DER (ECDSA-Sig-Value), the
 * encoding DSSE's ECDSA verifiers expect.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { sha256 } from "./sha256.ts";
import { CryptoError } from "./errors.ts";

/** SPKI DER header of an id-ecPublicKey / prime256v1 key with an uncompressed point (65 bytes follow). */
const SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
export const P256_SPKI_LENGTH = SPKI_PREFIX.length + 65;

export interface P256KeyPair {
  /** Raw 32-byte scalar: seal it, never send it. */
  secret: Uint8Array;
  /** SPKI DER of the public key. */
  spki: Uint8Array;
  /** node:crypto private key, for signing and for TLS contexts. */
  privateKey: KeyObject;
}

export function generateP256(): P256KeyPair {
  return p256KeyPairOf(p256.utils.randomSecretKey());
}

/** The key pair of a sealed scalar. */
export function p256KeyPairOf(secret: Uint8Array): P256KeyPair {
  if (secret.length !== 32) throw new CryptoError("INVALID_KEY", `a P-256 private key is 32 bytes, got ${secret.length}`);
  const point = p256.getPublicKey(secret, false);
  const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  const privateKey = createPrivateKey({
    key: { kty: "EC", crv: "P-256", d: b64u(secret), x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33, 65)) },
    format: "jwk",
  });
  return { secret, spki: spkiOfPoint(point), privateKey };
}

export function spkiOfPoint(uncompressed: Uint8Array): Uint8Array {
  if (uncompressed.length !== 65 || uncompressed[0] !== 4) throw new CryptoError("INVALID_KEY", "a P-256 public point must be 65 bytes, uncompressed (0x04 || x || y)");
  return new Uint8Array(Buffer.concat([SPKI_PREFIX, uncompressed]));
}

/** Throws unless `spki` is the SPKI DER of a valid P-256 point. */
export function checkP256Spki(spki: Uint8Array): void {
  if (spki.length !== P256_SPKI_LENGTH || !Buffer.from(spki.subarray(0, SPKI_PREFIX.length)).equals(SPKI_PREFIX)) {
    throw new CryptoError("INVALID_KEY", "not the SPKI DER of a P-256 public key (id-ecPublicKey, prime256v1, uncompressed point)");
  }
  try {
    p256.Point.fromBytes(spki.subarray(SPKI_PREFIX.length));
  } catch (cause) {
    throw new CryptoError("INVALID_KEY", "the SPKI's P-256 point is not on the curve", { cause });
  }
}

/** ECDSA P-256 over SHA-256(message), ASN.1 DER. */
export function signP256(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign("sha256", message, { key: privateKey, dsaEncoding: "der" }));
}

/** Checks a DER ECDSA P-256/SHA-256 signature by the key whose SPKI DER is `spki`; false on any malformed input. */
export function verifyP256(spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
    return verify("sha256", message, { key, dsaEncoding: "der" }, signature);
  } catch {
    return false;
  }
}

/** DSSE keyid of a P-256 key: lowercase hex SHA-256 of its SPKI DER (no 0x). */
export function p256KeyId(spki: Uint8Array): string {
  return sha256(spki).slice(2);
}
