/**
 * The small subset of CBOR (RFC 8949) that tagged evidence needs: unsigned
 * integers, byte and text strings, arrays, maps and tags, definite lengths
 * only. Decoding is strict and bounds-checked: indefinite lengths, floats,
 * negative integers, trailing bytes and nesting deeper than 16 are refused.
 */

export type CborValue = number | Uint8Array | string | CborValue[] | Map<string | number, CborValue> | CborTagged;

export interface CborTagged {
  tag: number;
  value: CborValue;
}

export class CborError extends Error {
  constructor(detail: string) {
    super(`CBOR: ${detail}`);
    this.name = "CborError";
  }
}

const MAX_DEPTH = 16;

function head(major: number, n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new CborError(`length or value ${n} out of range`);
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  return Uint8Array.of(m | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

export function cborEncode(value: CborValue): Uint8Array {
  const parts: Uint8Array[] = [];
  const walk = (v: CborValue): void => {
    if (typeof v === "number") parts.push(head(0, v));
    else if (v instanceof Uint8Array) parts.push(head(2, v.length), v);
    else if (typeof v === "string") {
      const b = new TextEncoder().encode(v);
      parts.push(head(3, b.length), b);
    } else if (Array.isArray(v)) {
      parts.push(head(4, v.length));
      v.forEach(walk);
    } else if (v instanceof Map) {
      parts.push(head(5, v.size));
      for (const [k, item] of v) {
        walk(k);
        walk(item);
      }
    } else {
      parts.push(head(6, v.tag));
      walk(v.value);
    }
  };
  walk(value);
  return Buffer.concat(parts);
}

export function cborDecode(bytes: Uint8Array): CborValue {
  let pos = 0;
  const need = (n: number) => {
    if (n > bytes.length - pos) throw new CborError(`truncated at offset ${pos}`);
  };
  const readHead = (): { major: number; n: number } => {
    need(1);
    const b = bytes[pos++]!;
    const major = b >> 5;
    const info = b & 0x1f;
    if (info < 24) return { major, n: info };
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : 0;
    if (size === 0) throw new CborError(`unsupported additional information ${info} at offset ${pos - 1}`);
    need(size);
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + bytes[pos++]!;
    return { major, n };
  };
  const item = (depth: number): CborValue => {
    if (depth > MAX_DEPTH) throw new CborError("nested too deeply");
    const { major, n } = readHead();
    switch (major) {
      case 0:
        return n;
      case 2:
      case 3: {
        need(n);
        const b = new Uint8Array(bytes.subarray(pos, pos + n));
        pos += n;
        if (major === 2) return b;
        try {
          return new TextDecoder("utf-8", { fatal: true }).decode(b);
        } catch {
          throw new CborError("text string is not UTF-8");
        }
      }
      case 4: {
        if (n > bytes.length - pos) throw new CborError(`array of ${n} items cannot fit`);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        if (2 * n > bytes.length - pos) throw new CborError(`map of ${n} entries cannot fit`);
        const out = new Map<string | number, CborValue>();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== "string" && typeof k !== "number") throw new CborError("map keys must be text or unsigned integers");
          if (out.has(k)) throw new CborError(`duplicate map key ${String(k)}`);
          out.set(k, item(depth + 1));
        }
        return out;
      }
      case 6:
        return { tag: n, value: item(depth + 1) };
      default:
        throw new CborError(`unsupported major type ${major}`);
    }
  };
  const value = item(0);
  if (pos !== bytes.length) throw new CborError(`${bytes.length - pos} trailing bytes`);
  return value;
}
