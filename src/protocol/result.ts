/**
 * The result record an enclave encrypts to the requester, and its encryption.
 *
 * Record (plaintext): u32 BE header length || header || output bytes || zero
 * padding, where header is the canonical JSON of { outcome, error?, usage }
 * (output bytes travel raw, not in JSON; usage.outputBytes says how many there
 * are). The padding brings the record to paddedRecordLength of its length, so
 * the ciphertext, which anyone can download, tells only roughly how large the
 * output is, and not whether the program failed: a short error and a short
 * output are the same size. Records written before padding have none, and
 * parse the same way.
 *
 * Blob (what the host uploads; SHA-256 of it is the completion's outputDigest):
 *   magic "CLR1" (4) || HPKE enc (32) || HPKE ciphertext of a fresh data key (48) || chunked AES-GCM stream of the record
 * The data key is sealed with HPKE to the requester's result key with info
 * taskResultInfo(binding); the stream uses the same bytes as AAD. A result
 * made for one task therefore does not open as the result of another.
 */
import { z } from "zod";
import { generateDataKey, openStream, sealStream } from "../crypto/aead-stream.ts";
import { canonicalJsonBytes } from "../crypto/canonical-json.ts";
import { concatBytes } from "../crypto/bytes.ts";
import { CryptoError } from "../crypto/errors.ts";
import { openWith, sealTo } from "../crypto/hpke.ts";
import { taskResultInfo } from "./binding.ts";
import type { TaskBinding } from "./task.ts";

export interface ResourceUse {
  /** Wall-clock time the program ran, ms. */
  wallMs: number;
  /** CPU time the program's isolate used, ms. */
  cpuMs: number;
  /** Size of the program's output (0 on error). */
  outputBytes: number;
}

export type ResultRecord =
  | { outcome: "ok"; output: Uint8Array; usage: ResourceUse }
  | { outcome: "error"; error: { code: string; message: string }; usage: ResourceUse };

const MAGIC = new Uint8Array([0x43, 0x4c, 0x52, 0x31]); // "CLR1"
const ENC_BYTES = 32;
const WRAPPED_KEY_BYTES = 48;
const PREFIX_BYTES = MAGIC.length + ENC_BYTES + WRAPPED_KEY_BYTES;
/** Records are padded to at least this many bytes. */
export const MIN_PADDED_RECORD_BYTES = 512;

/**
 * The length a record of `length` bytes is padded to: at least MIN_PADDED_RECORD_BYTES, and above that
 * rounded up so that only the top bits of the length remain, as many as the bit length of its exponent
 * (the Padmé scheme): at most about 12% of padding, and a length reveals O(log log n) bits.
 */
export function paddedRecordLength(length: number): number {
  if (length <= MIN_PADDED_RECORD_BYTES) return MIN_PADDED_RECORD_BYTES;
  const exponent = Math.floor(Math.log2(length));
  const mantissaBits = Math.floor(Math.log2(exponent)) + 1;
  const step = 2 ** (exponent - mantissaBits);
  return Math.ceil(length / step) * step;
}

const usageSchema = z.object({
  wallMs: z.number().nonnegative(),
  cpuMs: z.number().nonnegative(),
  outputBytes: z.number().int().nonnegative(),
});

const headerSchema = z.discriminatedUnion("outcome", [
  z.object({ outcome: z.literal("ok"), usage: usageSchema }).strict(),
  z.object({ outcome: z.literal("error"), error: z.object({ code: z.string(), message: z.string() }).strict(), usage: usageSchema }).strict(),
]);

export function serializeResultRecord(record: ResultRecord): Uint8Array {
  const header =
    record.outcome === "ok"
      ? canonicalJsonBytes({ outcome: "ok", usage: { ...record.usage } })
      : canonicalJsonBytes({ outcome: "error", error: { ...record.error }, usage: { ...record.usage } });
  const output = record.outcome === "ok" ? record.output : new Uint8Array(0);
  const unpadded = 4 + header.length + output.length;
  const out = new Uint8Array(paddedRecordLength(unpadded));
  new DataView(out.buffer).setUint32(0, header.length);
  out.set(header, 4);
  out.set(output, 4 + header.length);
  return out;
}

export function parseResultRecord(bytes: Uint8Array): ResultRecord {
  if (bytes.length < 4) throw malformed("result record is shorter than its length prefix");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + length > bytes.length) throw malformed(`result record header claims ${length} bytes but only ${bytes.length - 4} follow`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4, 4 + length)));
  } catch (cause) {
    throw malformed("result record header is not UTF-8 JSON", cause);
  }
  const parsed = headerSchema.safeParse(json);
  if (!parsed.success) throw malformed(`result record header is invalid: ${parsed.error.message}`);
  const { outcome, usage } = parsed.data;
  const body = bytes.subarray(4 + length);
  if (outcome === "error" && usage.outputBytes !== 0) throw malformed("an error result record carries output bytes");
  if (usage.outputBytes > body.length) throw malformed(`result record header says ${usage.outputBytes} output bytes but only ${body.length} follow`);
  if (body.subarray(usage.outputBytes).some((b) => b !== 0)) throw malformed("result record padding is not all zero bytes");
  if (outcome === "ok") return { outcome, output: body.slice(0, usage.outputBytes), usage };
  return { outcome, error: parsed.data.error, usage };
}

/** Encrypts a result record to the requester's X25519 result key for this task. */
export async function encryptResult(resultKey: Uint8Array, binding: TaskBinding, record: ResultRecord): Promise<Uint8Array> {
  const info = taskResultInfo(binding);
  const dataKey = generateDataKey();
  try {
    const { enc, ciphertext } = await sealTo(resultKey, dataKey, { info });
    const body = sealStream(dataKey, serializeResultRecord(record), { aad: info });
    return concatBytes(MAGIC, enc, ciphertext, body);
  } finally {
    dataKey.fill(0);
  }
}

/** Decrypts a result blob with the requester's X25519 private key; throws CryptoError when it is not this task's result. */
export async function decryptResult(resultPrivateKey: Uint8Array, binding: TaskBinding, blob: Uint8Array): Promise<ResultRecord> {
  if (blob.length < PREFIX_BYTES || !MAGIC.every((b, i) => blob[i] === b)) {
    throw malformed(`result blob must start with "CLR1" and be at least ${PREFIX_BYTES} bytes: it is not a Cloister result`);
  }
  const info = taskResultInfo(binding);
  const enc = blob.subarray(MAGIC.length, MAGIC.length + ENC_BYTES);
  const wrapped = blob.subarray(MAGIC.length + ENC_BYTES, PREFIX_BYTES);
  let dataKey: Uint8Array;
  try {
    dataKey = await openWith(resultPrivateKey, enc, wrapped, { info });
  } catch (cause) {
    throw new CryptoError(
      "DECRYPTION_FAILED",
      "result key did not open: the result was altered, is for another task, or was encrypted to another result key",
      { cause },
    );
  }
  try {
    return parseResultRecord(openStream(dataKey, blob.subarray(PREFIX_BYTES), { aad: info, label: "result ciphertext" }));
  } finally {
    dataKey.fill(0);
  }
}

function malformed(message: string, cause?: unknown): CryptoError {
  return new CryptoError("MALFORMED_CIPHERTEXT", message, { cause });
}
