/**
 * DER building blocks for tests that craft certificates the production code
 * would never issue (plain, legacy-Gramine, RSA-PSS ones), on asn1js. Each
 * helper takes and returns encoded bytes so certificates read as their ASN.1.
 */
import * as asn1js from "asn1js";

const encode = (block: asn1js.AsnType) => new Uint8Array(block.toBER());
const decoded = (der: Uint8Array) => {
  const { offset, result } = asn1js.fromBER(der);
  if (offset !== der.length) throw new Error(`der-build: not one DER element (${result.error})`);
  return result;
};

/** A constructed element of any tag around already-encoded children. */
const constructed = (tagClass: number, tagNumber: number, items: Uint8Array[]) =>
  encode(new asn1js.Constructed({ idBlock: { tagClass, tagNumber }, value: items.map(decoded) }));

export const sequence = (...items: Uint8Array[]) => encode(new asn1js.Sequence({ value: items.map(decoded) }));
export const set = (...items: Uint8Array[]) => encode(new asn1js.Set({ value: items.map(decoded) }));
export const explicit = (n: number, item: Uint8Array) => constructed(3, n, [item]);
export const octetString = (bytes: Uint8Array) => encode(new asn1js.OctetString({ valueHex: bytes }));
export const utf8String = (text: string) => encode(new asn1js.Utf8String({ value: text }));
export const bitString = (bytes: Uint8Array) => encode(new asn1js.BitString({ valueHex: bytes }));
export const oid = (dotted: string) => encode(new asn1js.ObjectIdentifier({ value: dotted }));
/** A non-negative INTEGER from big-endian magnitude bytes. */
export const integer = (magnitude: Uint8Array) => encode(asn1js.Integer.fromBigInt(BigInt(`0x${Buffer.from(magnitude).toString("hex") || "0"}`)));
/** A primitive element with exactly these content bytes, for deliberately odd encodings. */
export const primitive = (tagNumber: number, content: Uint8Array) =>
  encode(new asn1js.Primitive({ idBlock: { tagClass: 1, tagNumber }, valueHex: content }));
/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050 (whole seconds). */
export const time = (date: Date) => {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return encode(date.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate }));
};
