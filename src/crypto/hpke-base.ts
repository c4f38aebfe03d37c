/**
 * RFC 9180 HPKE, base mode (single shot, and sender/recipient contexts for
 * many messages under one encapsulation), for exactly one suite:
 * DHKEM(X25519, HKDF-SHA256) (kem_id 0x0020), HKDF-SHA256 (kdf_id 0x0001),
 * AES-256-GCM (aead_id 0x0002). Synchronous, directly on node:crypto: the
 * Web Crypto path (@hpke/core) paid for async jobs, key imports and a dozen
 * small HMAC promises per message, which made HPKE the requester's largest
 * CPU cost. @hpke/core stays the interop reference in the tests.
 *
 * Callers check key and enc lengths; this module throws CryptoError for a
 * low-order X25519 point (all-zero DH output, RFC 9180 §7.1.4) and for a
 * ciphertext that fails to open.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hash,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { CryptoError } from "./errors.ts";

/** Nsk = Npk = Nenc = Nsecret for DHKEM(X25519, HKDF-SHA256). */
const X25519_BYTES = 32;
/** Nh of HKDF-SHA256, and SHA-256's block size for HMAC. */
const HASH_BYTES = 32;
const SHA256_BLOCK_BYTES = 64;
/** Nn and Nt of AES-256-GCM. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID_AES_256_GCM = 0x0002;
const MODE_BASE = 0x00;

const VERSION_LABEL = Buffer.from("HPKE-v1", "latin1");
const EMPTY = Buffer.alloc(0);

/** DER prefix of a PKCS#8 X25519 private key (RFC 8410); the raw 32 bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

function i2osp2(n: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(n);
  return out;
}

/** suite_id of the KEM's own HKDF calls (RFC 9180 §4.1). */
const KEM_SUITE_ID = Buffer.concat([Buffer.from("KEM", "latin1"), i2osp2(KEM_ID)]);

/** The HPKE suite_id and AEAD key length Nk the key schedule runs under. */
export interface KeyScheduleSuite {
  suiteId: Uint8Array;
  keyBytes: number;
  /** LabeledExtract("", "psk_id_hash", "") — constant per suite in base mode. */
  pskIdHash: Uint8Array;
}

/**
 * The key schedule's suite for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 and
 * the given AEAD id and key length. Production uses only `HPKE_SUITE`; the
 * parameters exist so a test can replay RFC 9180 Appendix A.1 (AES-128-GCM).
 */
export function keyScheduleSuite(aeadId: number, keyBytes: number): KeyScheduleSuite {
  const suiteId = Buffer.concat([Buffer.from("HPKE", "latin1"), i2osp2(KEM_ID), i2osp2(KDF_ID), i2osp2(aeadId)]);
  return { suiteId, keyBytes, pskIdHash: labeledExtract(suiteId, EMPTY, "psk_id_hash", EMPTY) };
}

/** The suite in use: AES-256-GCM (aead_id 0x0002, Nk 32). */
export const HPKE_SUITE: KeyScheduleSuite = keyScheduleSuite(AEAD_ID_AES_256_GCM, 32);

/**
 * HMAC-SHA256 (RFC 2104) of the concatenated parts, on one-shot crypto.hash:
 * createHmac's per-call setup cost about 12 µs against about 5 µs here, and a
 * message takes six HMACs. Keys here are salts and PRKs of at most 32 bytes,
 * so the key is only ever zero-padded, never hashed.
 */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  if (key.length > SHA256_BLOCK_BYTES) throw new RangeError(`HMAC key must be at most ${SHA256_BLOCK_BYTES} bytes here, got ${key.length}`);
  let length = SHA256_BLOCK_BYTES;
  for (const part of parts) length += part.length;
  const inner = Buffer.alloc(length);
  const outer = Buffer.alloc(SHA256_BLOCK_BYTES + HASH_BYTES);
  for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
    const byte = key[i] ?? 0;
    inner[i] = byte ^ 0x36;
    outer[i] = byte ^ 0x5c;
  }
  let at = SHA256_BLOCK_BYTES;
  for (const part of parts) {
    inner.set(part, at);
    at += part.length;
  }
  outer.set(hash("sha256", inner, "buffer"), SHA256_BLOCK_BYTES);
  return hash("sha256", outer, "buffer");
}

/** RFC 9180 §4: Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm). An empty salt is HMAC's all-zero key. */
export function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return hmacSha256(salt, VERSION_LABEL, suiteId, Buffer.from(label, "latin1"), ikm);
}

/**
 * RFC 9180 §4: Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L).
 * Every length this suite asks for (Nsecret, Nk, Nn) fits one HKDF-Expand
 * block, T(1) = HMAC(prk, labeled_info ‖ 0x01), so longer ones are refused.
 */
export function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > HASH_BYTES) {
    throw new RangeError(`LabeledExpand length must be 1..${HASH_BYTES} for this suite, got ${length}`);
  }
  return hmacSha256(prk, i2osp2(length), VERSION_LABEL, suiteId, Buffer.from(label, "latin1"), info, Uint8Array.of(1)).subarray(0, length);
}

export interface BaseKeySchedule {
  keyScheduleContext: Uint8Array;
  secret: Uint8Array;
  key: Uint8Array;
  baseNonce: Uint8Array;
}

/** RFC 9180 §5.1 KeySchedule with mode_base (psk and psk_id empty). The exporter secret is not derived: single shot has no exporter. */
export function keyScheduleBase(sharedSecret: Uint8Array, info: Uint8Array, suite: KeyScheduleSuite = HPKE_SUITE): BaseKeySchedule {
  const infoHash = labeledExtract(suite.suiteId, EMPTY, "info_hash", info);
  const keyScheduleContext = Buffer.concat([Uint8Array.of(MODE_BASE), suite.pskIdHash, infoHash]);
  const secret = labeledExtract(suite.suiteId, sharedSecret, "secret", EMPTY);
  return {
    keyScheduleContext,
    secret,
    key: labeledExpand(suite.suiteId, secret, "key", keyScheduleContext, suite.keyBytes),
    baseNonce: labeledExpand(suite.suiteId, secret, "base_nonce", keyScheduleContext, NONCE_BYTES),
  };
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
}

/** Public keys go through JWK, the cheapest raw-ish form every Node 24 has (SPKI DER export costs ~10× more). */
function publicKeyObject(raw: Uint8Array): KeyObject {
  return publicKeyFromJwkX(Buffer.from(raw).toString("base64url"));
}

function publicKeyFromJwkX(x: string): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
}

function rawPublicKey(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: "jwk" }).x!, "base64url");
}

/**
 * Making a KeyObject costs more than the X25519 operation itself (about 0.1 ms
 * against 0.05 ms), and the same keys come back task after task: an enclave
 * opens with its one private key, a requester seals to a few enclaves and opens
 * with its own key. So both are kept:
 *
 * - A private key's object is kept with the caller's array (a WeakMap, gone
 *   with the array), together with a copy of the bytes it was made from, so a
 *   caller that overwrites its array in place gets a fresh object, never a
 *   stale key. Private key bytes are not copied into any other structure.
 * - Public keys are public: up to RECIPIENT_CACHE_SIZE of them are kept by
 *   value, least recently used forgotten first.
 */
interface PrivateKeyEntry {
  raw: Buffer;
  key: KeyObject;
  publicRaw: Buffer;
}
const privateKeys = new WeakMap<Uint8Array, PrivateKeyEntry>();

function privateKeyEntry(raw: Uint8Array): PrivateKeyEntry {
  const kept = privateKeys.get(raw);
  if (kept !== undefined && timingSafeEqual(kept.raw, raw)) return kept;
  const key = privateKeyObject(raw);
  const entry = { raw: Buffer.from(raw), key, publicRaw: rawPublicKey(createPublicKey(key)) };
  privateKeys.set(raw, entry);
  return entry;
}

const RECIPIENT_CACHE_SIZE = 256;
const recipientKeys = new Map<string, KeyObject>();

function recipientKeyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw).toString("base64url");
  const kept = recipientKeys.get(id);
  if (kept !== undefined) {
    recipientKeys.delete(id);
    recipientKeys.set(id, kept);
    return kept;
  }
  const key = publicKeyFromJwkX(id);
  recipientKeys.set(id, key);
  if (recipientKeys.size > RECIPIENT_CACHE_SIZE) recipientKeys.delete(recipientKeys.keys().next().value!);
  return key;
}

/** Fresh X25519 key pair as raw 32-byte values. */
export function generateX25519KeyPair(): { publicKey: Uint8Array; privateKey: Uint8Array } {
  const pair = generateKeyPairSync("x25519");
  const jwk = pair.privateKey.export({ format: "jwk" });
  const publicRaw = Buffer.from(jwk.x!, "base64url");
  const privateKey = new Uint8Array(Buffer.from(jwk.d!, "base64url"));
  // A requester opens each task's result with a fresh pair: its object is kept for that open.
  privateKeys.set(privateKey, { raw: Buffer.from(privateKey), key: pair.privateKey, publicRaw });
  return { publicKey: new Uint8Array(publicRaw), privateKey };
}

/** The raw X25519 public key of a raw private key. */
export function x25519PublicKeyOf(privateKey: Uint8Array): Uint8Array {
  return new Uint8Array(rawPublicKey(createPublicKey(privateKeyObject(privateKey))));
}

/** X25519 with the all-zero check of RFC 9180 §7.1.4 (OpenSSL refuses it too; the check does not rely on that). */
function dh(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch (cause) {
    throw lowOrderPoint(cause);
  }
  let acc = 0;
  for (const byte of shared) acc |= byte;
  if (acc === 0) throw lowOrderPoint();
  return shared;
}

function lowOrderPoint(cause?: unknown): CryptoError {
  return new CryptoError(
    "INVALID_KEY",
    "X25519 produced an all-zero shared secret: the peer key is a low-order point, not a real key (RFC 9180 §7.1.4)",
    { cause },
  );
}

/** RFC 9180 §4.1 ExtractAndExpand. */
function extractAndExpand(dhOutput: Uint8Array, kemContext: Uint8Array): Buffer {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dhOutput);
  return labeledExpand(KEM_SUITE_ID, eaePrk, "shared_secret", kemContext, X25519_BYTES);
}

/**
 * RFC 9180 §4.1 Encap. `ephemeralPrivateKey` fixes skE for known-answer
 * tests; without it a fresh ephemeral key is generated (always, in production).
 */
export function encapsulate(recipientPublicKey: Uint8Array, ephemeralPrivateKey?: Uint8Array): { sharedSecret: Buffer; enc: Buffer } {
  const ephemeral = ephemeralPrivateKey ? fixedKeyPair(ephemeralPrivateKey) : generateKeyPairSync("x25519");
  const enc = rawPublicKey(ephemeral.publicKey);
  const dhOutput = dh(ephemeral.privateKey, recipientKeyObject(recipientPublicKey));
  return { sharedSecret: extractAndExpand(dhOutput, Buffer.concat([enc, recipientPublicKey])), enc };
}

function fixedKeyPair(privateKey: Uint8Array): { privateKey: KeyObject; publicKey: KeyObject } {
  const key = privateKeyObject(privateKey);
  return { privateKey: key, publicKey: createPublicKey(key) };
}

/** RFC 9180 §4.1 Decap. */
export function decapsulate(enc: Uint8Array, recipientPrivateKey: Uint8Array): Buffer {
  const skR = privateKeyEntry(recipientPrivateKey);
  const dhOutput = dh(skR.key, publicKeyObject(enc));
  return extractAndExpand(dhOutput, Buffer.concat([enc, skR.publicRaw]));
}

/** RFC 9180 §5.2: the largest sequence number this module seals or opens (far below the suite's 2^96 - 1). */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** RFC 9180 §5.2 ComputeNonce: base_nonce XOR I2OSP(seq, Nn). */
function computeNonce(baseNonce: Uint8Array, seq: number): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`HPKE sequence number must be an integer 0..${MAX_SEQUENCE}, got ${seq}`);
  const nonce = Buffer.from(baseNonce);
  // seq < 2^53: its big-endian bytes fill the last 7 of the 12, the rest of I2OSP(seq, 12) is zero.
  let rest = seq;
  for (let i = NONCE_BYTES - 1; rest > 0; i--) {
    nonce[i]! ^= rest % 256;
    rest = Math.floor(rest / 256);
  }
  return nonce;
}

/**
 * The sender's context of RFC 9180 §5.2 (SetupBaseS): one encapsulation, then any number of messages, the
 * n-th sealed with sequence number n. A caller that seals many messages to one recipient at once (a page of
 * shares) pays one X25519 key generation and exchange, not one per message; each message's AAD is what
 * binds it to its place.
 */
export class SenderContext {
  readonly enc: Uint8Array;
  /** Imported once: a raw key would be imported again by every createCipheriv. */
  readonly #key: KeyObject;
  readonly #baseNonce: Uint8Array;
  #seq = 0;

  constructor(recipientPublicKey: Uint8Array, info: Uint8Array, ephemeralPrivateKey?: Uint8Array) {
    const { sharedSecret, enc } = encapsulate(recipientPublicKey, ephemeralPrivateKey);
    const { key, baseNonce } = keyScheduleBase(sharedSecret, info);
    this.enc = new Uint8Array(enc);
    this.#key = createSecretKey(key);
    this.#baseNonce = baseNonce;
  }

  /** Seals the next message: ciphertext = AES-256-GCM(key, nonce(seq), aad, pt) ‖ 16-byte tag. */
  seal(aad: Uint8Array, plaintext: Uint8Array): { seq: number; ciphertext: Uint8Array } {
    const seq = this.#seq++;
    const cipher = createCipheriv("aes-256-gcm", this.#key, computeNonce(this.#baseNonce, seq), { authTagLength: TAG_BYTES }).setAAD(aad);
    const body = cipher.update(plaintext);
    const final = cipher.final();
    const ciphertext = new Uint8Array(body.length + final.length + TAG_BYTES);
    ciphertext.set(body, 0);
    ciphertext.set(final, body.length);
    ciphertext.set(cipher.getAuthTag(), body.length + final.length);
    return { seq, ciphertext };
  }
}

/**
 * The recipient's context of RFC 9180 §5.2 (SetupBaseR). Messages are opened by the sequence number they
 * were sealed under, in any order: the sender's seq is carried with each ciphertext, and a ciphertext moved
 * to another seq, AAD or context does not authenticate. A message opened twice opens to the same plaintext;
 * callers that must see each message once check that themselves.
 */
export class RecipientContext {
  readonly #key: KeyObject;
  readonly #baseNonce: Uint8Array;

  constructor(enc: Uint8Array, recipientPrivateKey: Uint8Array, info: Uint8Array) {
    const { key, baseNonce } = keyScheduleBase(decapsulate(enc, recipientPrivateKey), info);
    this.#key = createSecretKey(key);
    this.#baseNonce = baseNonce;
  }

  /** Throws CryptoError DECRYPTION_FAILED when the tag does not verify. */
  open(seq: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length < TAG_BYTES) {
      throw new CryptoError("DECRYPTION_FAILED", `HPKE ciphertext is ${ciphertext.length} bytes, shorter than the ${TAG_BYTES}-byte AES-GCM tag`);
    }
    const tagAt = ciphertext.length - TAG_BYTES;
    const decipher = createDecipheriv("aes-256-gcm", this.#key, computeNonce(this.#baseNonce, seq), { authTagLength: TAG_BYTES })
      .setAAD(aad)
      .setAuthTag(ciphertext.subarray(tagAt));
    const body = decipher.update(ciphertext.subarray(0, tagAt));
    let final: Buffer;
    try {
      final = decipher.final();
    } catch (cause) {
      throw new CryptoError("DECRYPTION_FAILED", "HPKE ciphertext failed AES-256-GCM authentication", { cause });
    }
    const plaintext = new Uint8Array(body.length + final.length);
    plaintext.set(body, 0);
    plaintext.set(final, body.length);
    return plaintext;
  }
}

/** SealBase (RFC 9180 §6.1): single shot, the first (seq 0) and only message of a sender context. */
export function sealBase(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ephemeralPrivateKey?: Uint8Array,
): { enc: Uint8Array; ciphertext: Uint8Array } {
  const context = new SenderContext(recipientPublicKey, info, ephemeralPrivateKey);
  return { enc: context.enc, ciphertext: context.seal(aad, plaintext).ciphertext };
}

/** OpenBase (RFC 9180 §6.1), seq = 0. Throws CryptoError DECRYPTION_FAILED when the tag does not verify. */
export function openBase(recipientPrivateKey: Uint8Array, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return new RecipientContext(enc, recipientPrivateKey, info).open(0, aad, ciphertext);
}
