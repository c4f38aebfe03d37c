/**
 * A minimal DER writer for the one certificate shape attested TLS makes. It is
 * written here rather than taken from an X.509 library because the Cloister
 * collateral extension uses a UUID-based OID (2.25.<128-bit integer>) whose
 * arc is larger than 2^53, which common JS ASN.1 libraries cannot encode.
 */

function length(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return Buffer.concat([Uint8Array.of(tag), length(body.length), body]);
}

export const sequence = (...items: Uint8Array[]) => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]) => tlv(0x31, ...items);
export const octetString = (bytes: Uint8Array) => tlv(0x04, bytes);
export const utf8String = (text: string) => tlv(0x0c, new TextEncoder().encode(text));
export const bitString = (bytes: Uint8Array) => tlv(0x03, Uint8Array.of(0), bytes);
export const boolean = (value: boolean) => tlv(0x01, Uint8Array.of(value ? 0xff : 0));
export const explicit = (n: number, item: Uint8Array) => tlv(0xa0 + n, item);

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function integer(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Uint8Array.of(0), trimmed]) : trimmed);
}

/** OBJECT IDENTIFIER content bytes; arcs may exceed 2^53. */
export function oidBytes(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`OID ${dotted} needs at least two arcs`);
  const out: number[] = [];
  const sub = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  for (const v of sub) {
    const chunk: number[] = [];
    let n = v;
    do {
      chunk.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return Uint8Array.from(out);
}

export const oid = (dotted: string) => tlv(0x06, oidBytes(dotted));

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(date: Date): Uint8Array {
  const text = date.toISOString().replace(/[-:T]/g, "").replace(/\.\d{3}Z$/, "Z");
  return date.getUTCFullYear() < 2050 ? tlv(0x17, new TextEncoder().encode(text.slice(2))) : tlv(0x18, new TextEncoder().encode(text));
}
