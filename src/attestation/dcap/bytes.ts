/** A bounds-checked little-endian reader: every read past the end throws QUOTE_MALFORMED. */
import { AttestationError } from "./errors.ts";

export class ByteReader {
  readonly bytes: Uint8Array;
  offset: number;
  readonly what: string;

  constructor(bytes: Uint8Array, what: string, offset = 0) {
    this.bytes = bytes;
    this.offset = offset;
    this.what = what;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  take(n: number, field: string): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || n > this.remaining) {
      throw new AttestationError(
        "QUOTE_MALFORMED",
        `${this.what}: ${field} needs ${n} bytes at offset ${this.offset}, but only ${this.remaining} remain`,
      );
    }
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return b[0]! | (b[1]! << 8);
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Strict hex decoding: odd lengths and non-hex characters are refused. */
export function fromHex(text: string, what: string): Uint8Array {
  const t = text.trim();
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) {
    throw new AttestationError("COLLATERAL_MALFORMED", `${what} is not a hex string`);
  }
  return new Uint8Array(Buffer.from(t, "hex"));
}
