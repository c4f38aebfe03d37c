/**
 * Chunked AES-256-GCM for payloads of any size (node:crypto).
 *
 * Layout: header || chunk_0 || ... || chunk_n-1
 *   header  = magic "CLS1" (4) || version u8 (1) || chunk size u32 BE (4) || nonce prefix (8, random)
 *   chunk_i = AES-256-GCM(key, nonce_i, plaintext_i, aad_i) || tag (16)
 *   nonce_i = nonce prefix || i as u32 BE
 *   aad_i   = header || caller AAD || i as u32 BE || last flag u8 (1 on the final chunk, else 0)
 *
 * Every chunk but the last carries exactly `chunk size` plaintext bytes; the
 * last carries 0..chunk size (there is always at least one chunk). Binding the
 * index and the last flag into each tag detects reordering, swapping,
 * truncation at a chunk boundary and extension; binding the header detects any
 * change to it. A fresh random nonce prefix per stream makes (key, nonce) unique
 * as long as a data key encrypts fewer than ~2^32 streams (it encrypts one).
 * `openStream` returns plaintext only after every chunk has authenticated.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { concatBytes } from "./bytes.ts";
import { CryptoError } from "./errors.ts";

const MAGIC = new Uint8Array([0x43, 0x4c, 0x53, 0x31]); // "CLS1"
const VERSION = 1;
const HEADER_BYTES = 17;
const PREFIX_BYTES = 8;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const MAX_CHUNKS = 2 ** 32;

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const MIN_CHUNK_SIZE = 16;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

export interface StreamOptions {
  /** Bound into every chunk's tag; opening with different AAD fails. */
  aad?: Uint8Array;
  /** Plaintext bytes per chunk (sealing only). */
  chunkSize?: number;
  /** Names the payload in error messages, e.g. "input ciphertext". */
  label?: string;
}

/** A fresh random 32-byte AES-256-GCM data key. */
export function generateDataKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

export function sealStream(key: Uint8Array, plaintext: Uint8Array, opts: StreamOptions = {}): Uint8Array {
  checkKey(key);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new CryptoError("INVALID_ARGUMENT", `chunk size must be an integer in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}], got ${chunkSize}`);
  }
  const chunks = Math.max(1, Math.ceil(plaintext.length / chunkSize));
  if (chunks > MAX_CHUNKS) throw new CryptoError("INVALID_ARGUMENT", `payload needs ${chunks} chunks; at most 2^32 fit: use a larger chunk size`);

  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC, 0);
  header[4] = VERSION;
  new DataView(header.buffer).setUint32(5, chunkSize);
  header.set(randomBytes(PREFIX_BYTES), 9);
  const prefix = header.subarray(9);
  const aad = opts.aad ?? new Uint8Array(0);

  const out = new Uint8Array(HEADER_BYTES + plaintext.length + chunks * TAG_BYTES);
  out.set(header, 0);
  let offset = HEADER_BYTES;
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const cipher = createCipheriv("aes-256-gcm", key, nonce(prefix, i));
    cipher.setAAD(chunkAad(header, aad, i, last));
    const body = cipher.update(plaintext.subarray(i * chunkSize, Math.min(plaintext.length, (i + 1) * chunkSize)));
    cipher.final();
    out.set(body, offset);
    offset += body.length;
    out.set(cipher.getAuthTag(), offset);
    offset += TAG_BYTES;
  }
  return out;
}

export function openStream(key: Uint8Array, sealed: Uint8Array, opts: StreamOptions = {}): Uint8Array {
  checkKey(key);
  const label = opts.label ?? "ciphertext";
  if (sealed.length < HEADER_BYTES + TAG_BYTES) {
    throw new CryptoError("TRUNCATED", `${label} is ${sealed.length} bytes, shorter than a header and one chunk (${HEADER_BYTES + TAG_BYTES}): it was cut short`);
  }
  const header = sealed.subarray(0, HEADER_BYTES);
  if (!MAGIC.every((b, i) => header[i] === b)) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", `${label} does not start with the chunked AES-GCM magic "CLS1": it is not a Cloister stream`);
  }
  if (header[4] !== VERSION) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", `${label} has stream version ${header[4]}; this build reads version ${VERSION}`);
  }
  const chunkSize = new DataView(header.buffer, header.byteOffset).getUint32(5);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", `${label} declares chunk size ${chunkSize}, outside [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]: the header was altered`);
  }
  const prefix = header.subarray(9);
  const aad = opts.aad ?? new Uint8Array(0);
  const body = sealed.subarray(HEADER_BYTES);
  const full = chunkSize + TAG_BYTES;
  const chunks = Math.max(1, Math.ceil(body.length / full));
  const lastLength = body.length - (chunks - 1) * full;
  if (lastLength < TAG_BYTES) {
    throw new CryptoError("TRUNCATED", `${label} ends inside the tag of chunk ${chunks - 1}: it was cut short`);
  }

  const out = new Uint8Array(body.length - chunks * TAG_BYTES);
  for (let i = 0; i < chunks; i++) {
    const last = i === chunks - 1;
    const chunk = body.subarray(i * full, last ? body.length : (i + 1) * full);
    const plain = openChunk(key, header, prefix, aad, i, last, chunk);
    if (plain === undefined) throw chunkFailure(key, header, prefix, aad, i, last, chunk, label);
    out.set(plain, i * chunkSize);
  }
  return out;
}

function openChunk(
  key: Uint8Array,
  header: Uint8Array,
  prefix: Uint8Array,
  aad: Uint8Array,
  index: number,
  last: boolean,
  chunk: Uint8Array,
): Uint8Array | undefined {
  const decipher = createDecipheriv("aes-256-gcm", key, nonce(prefix, index));
  decipher.setAAD(chunkAad(header, aad, index, last));
  decipher.setAuthTag(chunk.subarray(chunk.length - TAG_BYTES));
  const plain = decipher.update(chunk.subarray(0, chunk.length - TAG_BYTES));
  try {
    decipher.final();
    return plain;
  } catch {
    return undefined;
  }
}

/** Tells truncation and extension apart from other tampering by retrying with the opposite last flag. */
function chunkFailure(
  key: Uint8Array,
  header: Uint8Array,
  prefix: Uint8Array,
  aad: Uint8Array,
  index: number,
  last: boolean,
  chunk: Uint8Array,
  label: string,
): CryptoError {
  if (openChunk(key, header, prefix, aad, index, !last, chunk) !== undefined) {
    return last
      ? new CryptoError("TRUNCATED", `${label} ends after chunk ${index}, which is not its final chunk: the stream was truncated`)
      : new CryptoError("MALFORMED_CIPHERTEXT", `${label} has data after its final chunk ${index}: the stream was extended`);
  }
  return new CryptoError(
    "DECRYPTION_FAILED",
    `${label} failed authentication at chunk ${index}: it was altered, reordered, or encrypted under another key or binding`,
  );
}

function nonce(prefix: Uint8Array, index: number): Uint8Array {
  const n = new Uint8Array(12);
  n.set(prefix, 0);
  new DataView(n.buffer).setUint32(8, index);
  return n;
}

function chunkAad(header: Uint8Array, aad: Uint8Array, index: number, last: boolean): Uint8Array {
  const suffix = new Uint8Array(5);
  new DataView(suffix.buffer).setUint32(0, index);
  suffix[4] = last ? 1 : 0;
  return concatBytes(header, aad, suffix);
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new CryptoError("INVALID_KEY", `AES-256-GCM key must be ${KEY_BYTES} bytes, got ${key.length}`);
}
