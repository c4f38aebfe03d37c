/**
 * RFC 9180 HPKE, base mode, suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 * AES-256-GCM, via @hpke/core (Web Crypto underneath).
 *
 * Keys cross module boundaries as raw 32-byte X25519 values. `info` binds a
 * ciphertext to its purpose (e.g. `taskKeyInfo(binding)`): opening with any
 * other info fails, which is how a key wrapped for one task is refused in
 * another. Single-shot only: one message per encapsulation.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { CryptoError } from "./errors.ts";

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

export const X25519_KEY_BYTES = 32;

export interface HpkeKeyPair {
  /** Raw 32-byte X25519 public key. */
  publicKey: Uint8Array;
  /** Raw 32-byte X25519 private key. Keep it inside the trust boundary. */
  privateKey: Uint8Array;
}

export interface HpkeOptions {
  info: Uint8Array;
  aad?: Uint8Array;
}

export interface HpkeSealed {
  /** Encapsulated key (32 bytes for X25519). */
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

export async function generateHpkeKeyPair(): Promise<HpkeKeyPair> {
  const kp = await suite.kem.generateKeyPair();
  return {
    publicKey: new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey)),
    privateKey: new Uint8Array(await suite.kem.serializePrivateKey(kp.privateKey)),
  };
}

/** The public key that belongs to a raw private key. */
export async function hpkePublicKeyOf(privateKey: Uint8Array): Promise<Uint8Array> {
  await importPrivate(privateKey);
  const pkcs8 = Buffer.concat([X25519_PKCS8_PREFIX, privateKey]);
  const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" })).export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x!, "base64url"));
}

/** DER prefix of a PKCS#8 X25519 private key (RFC 8410); the raw 32 bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

export async function sealTo(recipientPublicKey: Uint8Array, plaintext: Uint8Array, opts: HpkeOptions): Promise<HpkeSealed> {
  const pk = await importPublic(recipientPublicKey);
  const sealed = await suite.seal({ recipientPublicKey: pk, info: ab(opts.info) }, ab(plaintext), opts.aad ? ab(opts.aad) : undefined);
  return { enc: new Uint8Array(sealed.enc), ciphertext: new Uint8Array(sealed.ct) };
}

export async function openWith(
  privateKey: Uint8Array,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  opts: HpkeOptions,
): Promise<Uint8Array> {
  const sk = await importPrivate(privateKey);
  if (enc.length !== X25519_KEY_BYTES) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", `HPKE encapsulated key must be ${X25519_KEY_BYTES} bytes, got ${enc.length}`);
  }
  try {
    const pt = await suite.open({ recipientKey: sk, enc: ab(enc), info: ab(opts.info) }, ab(ciphertext), opts.aad ? ab(opts.aad) : undefined);
    return new Uint8Array(pt);
  } catch (cause) {
    throw new CryptoError(
      "DECRYPTION_FAILED",
      "HPKE ciphertext failed to open: it was altered, sealed to another key, or bound to another purpose (info/AAD)",
      { cause },
    );
  }
}

async function importPublic(raw: Uint8Array) {
  if (raw.length !== X25519_KEY_BYTES) {
    throw new CryptoError("INVALID_KEY", `HPKE public key must be ${X25519_KEY_BYTES} raw X25519 bytes, got ${raw.length}`);
  }
  try {
    return await suite.kem.deserializePublicKey(ab(raw));
  } catch (cause) {
    throw new CryptoError("INVALID_KEY", "HPKE public key is not a valid X25519 key", { cause });
  }
}

async function importPrivate(raw: Uint8Array) {
  if (raw.length !== X25519_KEY_BYTES) {
    throw new CryptoError("INVALID_KEY", `HPKE private key must be ${X25519_KEY_BYTES} raw X25519 bytes, got ${raw.length}`);
  }
  try {
    return await suite.kem.deserializePrivateKey(ab(raw));
  } catch (cause) {
    throw new CryptoError("INVALID_KEY", "HPKE private key is not a valid X25519 key", { cause });
  }
}

/** A standalone ArrayBuffer copy (Web Crypto wants ArrayBuffer, not a view into a larger one). */
function ab(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}
