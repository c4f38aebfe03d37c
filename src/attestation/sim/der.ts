/**
 * A minimal DER encoder: just the universal types the SGX PCK extension and
 * the CRL extensions need. Encoding only; nothing here parses untrusted input.
 */

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, value: Uint8Array): Uint8Array {
  const length = encodeLength(value.length);
  const out = new Uint8Array(1 + length.length + value.length);
  out[0] = tag;
  out.set(length, 1);
  out.set(value, 1 + length.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Minimal two's-complement big-endian content octets of a non-negative integer. */
function unsignedContent(value: number | bigint): Uint8Array {
  let n = BigInt(value);
  if (n < 0n) throw new RangeError("DER: only non-negative integers are supported");
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  if ((bytes[0] ?? 0) & 0x80) bytes.unshift(0);
  return Uint8Array.from(bytes);
}

export function derSequence(items: Uint8Array[]): Uint8Array {
  return tlv(0x30, concat(items));
}

export function derInteger(value: number | bigint): Uint8Array {
  return tlv(0x02, unsignedContent(value));
}

export function derEnumerated(value: number): Uint8Array {
  return tlv(0x0a, unsignedContent(value));
}

export function derOctetString(value: Uint8Array): Uint8Array {
  return tlv(0x04, value);
}

export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map((arc) => BigInt(arc));
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined) throw new RangeError(`DER: bad OID ${dotted}`);
  const bytes: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const groups: number[] = [];
    let n = arc;
    do {
      groups.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < groups.length - 1; i++) groups[i] = (groups[i] ?? 0) | 0x80;
    bytes.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}
