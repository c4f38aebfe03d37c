/**
 * DER reading for X.509 certificates, CRLs and Intel's SGX extensions, on
 * asn1js. asn1js parses BER; this module narrows it to what those formats
 * allow (definite lengths, one element, no trailing bytes) and turns its
 * failures into AttestationErrors. A DerNode keeps the exact encoded bytes so
 * names can be compared as encoded, as RFC 5280 expects.
 */
import { fromBER, GeneralizedTime, Integer, ObjectIdentifier, UTCTime, type AsnType } from "asn1js";
import { AttestationError, type AttestationErrorCode } from "./errors.ts";

export interface DerNode {
  /** The identifier octet (class, constructed bit and tag number). */
  tag: number;
  /** The whole element, header included. */
  raw: Uint8Array;
  /** The content bytes. */
  value: Uint8Array;
  block: AsnType;
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

function derError(code: AttestationErrorCode, what: string, detail: string): AttestationError {
  return new AttestationError(code, `${what}: malformed DER (${detail})`);
}

/**
 * `raw` is cut from the parent's bytes by the element's header rather than
 * taken from asn1js's own copy, which is wrong for OIDs with arcs over 2^53
 * (the 2.25 UUID arc of the Cloister collateral extension).
 */
function nodeOf(block: AsnType, raw: Uint8Array, code: AttestationErrorCode, what: string): DerNode {
  if (block.lenBlock.isIndefiniteForm) throw derError(code, what, "indefinite length");
  if (block.idBlock.tagNumber >= 0x1f) throw derError(code, what, "multi-byte tags are not supported");
  return { tag: raw[0]!, raw, value: raw.subarray(block.idBlock.blockLength + block.lenBlock.blockLength), block };
}

/** Parses a whole buffer as exactly one element. */
export function parseDer(bytes: Uint8Array, code: AttestationErrorCode, what: string): DerNode {
  let parsed: ReturnType<typeof fromBER>;
  try {
    // Extension values are parsed where they are read, not speculatively here.
    parsed = fromBER(bytes, { parseEmbedded: false, copyInput: false });
  } catch (e) {
    // asn1js throws plain errors on some malformed string contents.
    throw derError(code, what, (e as Error).message);
  }
  const { offset, result } = parsed;
  if (offset === -1) throw derError(code, what, result.error);
  if (offset !== bytes.length) throw derError(code, what, "trailing bytes");
  return nodeOf(result, bytes, code, what);
}

/** The child elements of a constructed element. */
export function children(node: DerNode, code: AttestationErrorCode, what: string): DerNode[] {
  if (!node.block.idBlock.isConstructed) throw derError(code, what, `tag 0x${node.tag.toString(16)} is not a constructed element`);
  let offset = 0;
  return (node.block.valueBlock as unknown as { value: AsnType[] }).value.map((child) => {
    const length = child.idBlock.blockLength + child.lenBlock.blockLength + child.lenBlock.length;
    const raw = node.value.subarray(offset, offset + length);
    offset += length;
    return nodeOf(child, raw, code, what);
  });
}

export function expectTag(node: DerNode | undefined, tag: number, code: AttestationErrorCode, what: string): DerNode {
  if (!node) throw derError(code, what, `missing element (expected tag 0x${tag.toString(16)})`);
  if (node.tag !== tag) throw derError(code, what, `expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

/** The dotted form of an OBJECT IDENTIFIER node. */
export function decodeOid(node: DerNode | undefined, code: AttestationErrorCode, what: string): string {
  const oid = expectTag(node, TAG.OID, code, what).block;
  if (!(oid instanceof ObjectIdentifier)) throw derError(code, what, "bad OBJECT IDENTIFIER");
  return oid.getValue();
}

/** Whether a node is the OBJECT IDENTIFIER `dotted`, compared as encoded (arcs may exceed 2^53). */
export function isOid(node: DerNode | undefined, dotted: string): boolean {
  if (node?.tag !== TAG.OID) return false;
  return Buffer.from(new ObjectIdentifier({ value: dotted }).toBER()).equals(node.raw);
}

/** A small non-negative INTEGER or ENUMERATED (SVNs, versions); larger values are refused. */
export function decodeSmallInt(node: DerNode, code: AttestationErrorCode, what: string): number {
  const int = node.block;
  if (!(int instanceof Integer)) throw derError(code, what, `expected an integer, found tag 0x${node.tag.toString(16)}`);
  const n = int.toBigInt();
  if (n < 0n || n > 0xffff_ffff_ffffn) throw derError(code, what, "integer out of range");
  return Number(n);
}

/** UTCTime / GeneralizedTime in DER's Z form (RFC 5280 §4.1.2.5), as unix seconds. */
export function decodeTime(node: DerNode, code: AttestationErrorCode, what: string): number {
  const text = Buffer.from(node.value).toString("latin1");
  const { block } = node;
  const zForm = block instanceof UTCTime ? /^\d{12}Z$/ : block instanceof GeneralizedTime ? /^\d{14}Z$/ : undefined;
  if (!zForm?.test(text)) throw derError(code, what, `bad time "${text}"`);
  return (block as UTCTime).toDate().getTime() / 1000;
}
