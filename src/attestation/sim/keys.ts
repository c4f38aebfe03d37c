/**
 * Deterministic P-256 keys and signatures for the simulated vendor PKI.
 *
 * Keys are derived from a seed with HKDF-SHA256 and signatures use RFC 6979
 * nonces (@noble/curves), so one seed always yields byte-identical
 * certificates, CRLs and quotes. This is a simulation: whoever holds the seed
 * can sign anything the simulated root vouches for.
 */
import { webcrypto } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

export interface SimKey {
  /** 32-byte private scalar. */
  secret: Uint8Array;
  /** 64-byte public key x||y, as SGX quotes carry attestation keys. */
  publicRaw: Uint8Array;
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
}

const encoder = new TextEncoder();
const secrets = new WeakMap<webcrypto.CryptoKey, Uint8Array>();

/** Labelled bytes from the seed (HKDF-SHA256). */
export function deriveBytes(seed: Uint8Array, label: string, length: number): Uint8Array {
  return hkdf(sha256, seed, encoder.encode("cloister-sim-pki-v1"), encoder.encode(label), length);
}

export async function deriveKey(seed: Uint8Array, label: string): Promise<SimKey> {
  const secret = p256.utils.randomSecretKey(deriveBytes(seed, `key/${label}`, p256.lengths.seed ?? 48));
  const publicRaw = p256.getPublicKey(secret, false).subarray(1);
  const jwk = {
    kty: "EC",
    crv: "P-256",
    x: Buffer.from(publicRaw.subarray(0, 32)).toString("base64url"),
    y: Buffer.from(publicRaw.subarray(32)).toString("base64url"),
  };
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const privateKey = await webcrypto.subtle.importKey("jwk", { ...jwk, d: Buffer.from(secret).toString("base64url") }, algorithm, true, ["sign"]);
  const publicKey = await webcrypto.subtle.importKey("jwk", jwk, algorithm, true, ["verify"]);
  secrets.set(privateKey, secret);
  return { secret, publicRaw, privateKey, publicKey };
}

/** ECDSA-P256-SHA256 over `message`, 64 bytes r||s (the form SGX quotes and Intel collateral use). */
export function signRaw(key: SimKey, message: Uint8Array): Uint8Array {
  return p256.sign(message, key.secret, { prehash: true, lowS: false });
}

/**
 * A WebCrypto whose ECDSA `sign` is deterministic for keys made by
 * `deriveKey`; everything else is node's webcrypto. Passed to @peculiar/x509
 * so certificates and CRLs are reproducible from the seed.
 */
export function deterministicCrypto(): webcrypto.Crypto {
  const subtle = webcrypto.subtle;
  const sign = async (_algorithm: unknown, key: webcrypto.CryptoKey, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> => {
    const secret = secrets.get(key);
    if (!secret) throw new Error("simulated PKI: signing key was not created by deriveKey");
    const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    const signature = p256.sign(bytes, secret, { prehash: true, lowS: false });
    return signature.slice().buffer;
  };
  const wrapped = new Proxy(subtle, {
    get(target, property) {
      if (property === "sign") return sign;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return new Proxy(webcrypto, {
    get(target, property) {
      if (property === "subtle") return wrapped;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
