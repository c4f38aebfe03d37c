/**
 * A minimal, bounds-checked DER reader: just enough ASN.1 to read X.509
 * certificates, CRLs and Intel's SGX extensions. Indefinite lengths, lengths
 * over 2^31 and elements running past their parent are refused.
 */
import { ObjectIdentifier } from "asn1js";
import { AttestationError, type AttestationErrorCode } from "./errors.ts";

export interface DerNode {
  tag: number;
  /** The whole element, header included. */
  raw: Uint8Array;
  /** The content bytes. */
  value: Uint8Array;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function derError(code: AttestationErrorCode, what: string, detail: string): AttestationError {
  return new AttestationError(code, `${what}: malformed DER (${detail})`);
}

/** Reads one element at `offset`. */
export function readNode(bytes: Uint8Array, offset: number, code: AttestationErrorCode, what: string): DerNode {
  if (offset + 2 > bytes.length) throw derError(code, what, "truncated header");
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw derError(code, what, "multi-byte tags are not supported");
  let len = bytes[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw derError(code, what, "indefinite length");
    if (n > 4) throw derError(code, what, "length too large");
    if (pos + n > bytes.length) throw derError(code, what, "truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[pos + i]!;
    pos += n;
  }
  if (len > bytes.length - pos) throw derError(code, what, `element of ${len} bytes overruns its container`);
  return { tag, raw: bytes.subarray(offset, pos + len), value: bytes.subarray(pos, pos + len) };
}

/** The child elements of a constructed element. */
export function children(node: DerNode, code: AttestationErrorCode, what: string): DerNode[] {
  const out: DerNode[] = [];
  let offset = 0;
  while (offset < node.value.length) {
    const child = readNode(node.value, offset, code, what);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, code: AttestationErrorCode, what: string): DerNode {
  if (!node) throw derError(code, what, `missing element (expected tag 0x${tag.toString(16)})`);
  if (node.tag !== tag) throw derError(code, what, `expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

/** Parses a whole buffer as exactly one element. */
export function parseDer(bytes: Uint8Array, code: AttestationErrorCode, what: string): DerNode {
  const node = readNode(bytes, 0, code, what);
  if (node.raw.length !== bytes.length) throw derError(code, what, "trailing bytes");
  return node;
}

export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) return "";
  const parts: number[] = [Math.floor(value[0]! / 40), value[0]! % 40];
  let acc = 0;
  for (let i = 1; i < value.length; i++) {
    const b = value[i]!;
    acc = acc * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(acc);
      acc = 0;
    }
  }
  return parts.join(".");
}

/** A small non-negative INTEGER (SVNs, versions); larger values are refused. */
export function decodeSmallInt(node: DerNode, code: AttestationErrorCode, what: string): number {
  const v = node.value;
  if (v.length === 0 || v.length > 6 || (v[0]! & 0x80)) throw derError(code, what, "integer out of range");
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

/** UTCTime / GeneralizedTime in DER's Z form, as unix seconds. */
export function decodeTime(node: DerNode, code: AttestationErrorCode, what: string): number {
  const s = Buffer.from(node.value).toString("latin1");
  let m: RegExpMatchArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === TAG.GENERALIZED_TIME && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    year = Number(m[1]);
  } else {
    throw derError(code, what, `bad time "${s}"`);
  }
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
}

/** Whether a node is the OBJECT IDENTIFIER `dotted`, compared as encoded (arcs may exceed 2^53; asn1js encodes them right). */
export function isOid(node: DerNode | undefined, dotted: string): boolean {
  if (node?.tag !== TAG.OID) return false;
  return Buffer.from(new ObjectIdentifier({ value: dotted }).toBER()).equals(node.raw);
}
