/**
 * RFC 9180 HPKE, base mode, suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
 * AES-256-GCM, implemented on node:crypto in ./hpke-base.ts (synchronous
 * underneath; the functions stay async for their callers).
 *
 * Keys cross module boundaries as raw 32-byte X25519 values. `info` binds a
 * ciphertext to its purpose (e.g. `taskKeyInfo(binding)`): opening with any
 * other info fails, which is how a key wrapped for one task is refused in
 * another. Single shot (`sealTo`/`openWith`), or a context that seals many
 * messages to one recipient under one encapsulation (`sealContextTo`/
 * `openContextWith`), each message bound by its AAD and sequence number.
 */
import { CryptoError } from "./errors.ts";
import { generateX25519KeyPair, MAX_SEQUENCE, openBase, RecipientContext, sealBase, SenderContext, x25519PublicKeyOf } from "./hpke-base.ts";

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

const NO_AAD = new Uint8Array(0);

export async function generateHpkeKeyPair(): Promise<HpkeKeyPair> {
  return generateX25519KeyPair();
}

/** The public key that belongs to a raw private key. */
export async function hpkePublicKeyOf(privateKey: Uint8Array): Promise<Uint8Array> {
  checkKeyLength(privateKey, "private");
  return x25519PublicKeyOf(privateKey);
}

export async function sealTo(recipientPublicKey: Uint8Array, plaintext: Uint8Array, opts: HpkeOptions): Promise<HpkeSealed> {
  checkKeyLength(recipientPublicKey, "public");
  return sealBase(recipientPublicKey, opts.info, opts.aad ?? NO_AAD, plaintext);
}

/** A sender context: `seal` numbers its messages 0, 1, 2, … (carry each `seq` with its ciphertext). */
export interface HpkeSealingContext {
  readonly enc: Uint8Array;
  seal(plaintext: Uint8Array, aad: Uint8Array): { seq: number; ciphertext: Uint8Array };
}

/** A recipient context: opens a message by the sequence number it was sealed under. */
export interface HpkeOpeningContext {
  open(seq: number, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array;
}

/** One encapsulation to `recipientPublicKey` for many messages (RFC 9180 §5.2): one X25519 exchange in all. */
export function sealContextTo(recipientPublicKey: Uint8Array, info: Uint8Array): HpkeSealingContext {
  checkKeyLength(recipientPublicKey, "public");
  const context = new SenderContext(recipientPublicKey, info);
  return { enc: context.enc, seal: (plaintext, aad) => context.seal(aad, plaintext) };
}

/** The recipient's side of `sealContextTo`; a message that fails to open throws DECRYPTION_FAILED. */
export function openContextWith(privateKey: Uint8Array, enc: Uint8Array, info: Uint8Array): HpkeOpeningContext {
  checkKeyLength(privateKey, "private");
  checkEncLength(enc);
  let context: RecipientContext;
  try {
    context = new RecipientContext(enc, privateKey, info);
  } catch (cause) {
    throw notOpened(cause);
  }
  return {
    open: (seq, ciphertext, aad) => {
      if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQUENCE) throw new CryptoError("MALFORMED_CIPHERTEXT", `HPKE sequence number must be an integer 0..${MAX_SEQUENCE}, got ${seq}`);
      try {
        return context.open(seq, aad, ciphertext);
      } catch (cause) {
        throw notOpened(cause);
      }
    },
  };
}

export async function openWith(
  privateKey: Uint8Array,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  opts: HpkeOptions,
): Promise<Uint8Array> {
  checkKeyLength(privateKey, "private");
  checkEncLength(enc);
  try {
    return openBase(privateKey, enc, opts.info, opts.aad ?? NO_AAD, ciphertext);
  } catch (cause) {
    throw notOpened(cause);
  }
}

function notOpened(cause: unknown): CryptoError {
  return new CryptoError("DECRYPTION_FAILED", "HPKE ciphertext failed to open: it was altered, sealed to another key, or bound to another purpose (info/AAD)", { cause });
}

function checkEncLength(enc: Uint8Array): void {
  if (enc.length !== X25519_KEY_BYTES) {
    throw new CryptoError("MALFORMED_CIPHERTEXT", `HPKE encapsulated key must be ${X25519_KEY_BYTES} bytes, got ${enc.length}`);
  }
}

/** Any 32 bytes are a valid X25519 key (RFC 7748 clamps scalars and masks u); only the length can be wrong. */
function checkKeyLength(raw: Uint8Array, kind: "public" | "private"): void {
  if (raw.length !== X25519_KEY_BYTES) {
    throw new CryptoError("INVALID_KEY", `HPKE ${kind} key must be ${X25519_KEY_BYTES} raw X25519 bytes, got ${raw.length}`);
  }
}
