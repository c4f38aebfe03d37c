/**
 * The evidence-carrying X.509 extensions of attested TLS certificates.
 *
 * - TCG DICE tagged evidence (OID 2.23.133.5.4.9), encoded as Gramine does:
 *   CBOR tag 60000 (TEE quote) wrapping [bstr quote, bstr claims], where
 *   claims is a serialized CBOR map {"pubkey-hash": bstr([1, SHA-256(SPKI)]),
 *   "nonce": bstr(freshness)} (1 is SHA-256 in IANA's named-information registry).
 * - Gramine's legacy extension (OID 1.2.840.113741.1337.6): the raw quote.
 *   Accepted on parse only.
 * - Cloister collateral (OID 2.25.56774544255047647680699010034503999622, the
 *   UUID arc of ITU-T X.667 for UUID 2ab66125-fe25-4a9f-ac93-d806300b6086):
 *   a cloister-evidence/v1 JSON document whose quote/report field is left
 *   empty, carrying the TEE type and the collateral (DCAP collateral, or the
 *   SEV-SNP VCEK and chain). The quote itself is always taken from the DICE or
 *   legacy extension.
 */
import { AttestationError } from "../dcap/errors.ts";
import { children, expectTag, isOid, parseDer, TAG } from "../dcap/der.ts";
import { decodeEvidence, encodeEvidence } from "../evidence-codec.ts";
import type { Evidence } from "../types.ts";
import { decode as cborDecode, encode as cborEncode, Tagged, type DecodeOptions, type EncodeOptions } from "cborg";
import { AttestedTlsError } from "./errors.ts";

export const DICE_TAGGED_EVIDENCE_OID = "2.23.133.5.4.9";
export const GRAMINE_LEGACY_QUOTE_OID = "1.2.840.113741.1337.6";
export const CLOISTER_COLLATERAL_OID = "2.25.56774544255047647680699010034503999622";
/** CBOR tag for "TEE quote" tagged evidence, as Gramine uses it. */
export const TEE_QUOTE_CBOR_TAG = 60000;
const IANA_HASH_SHA256 = 1;

const SLOTS = [
  ["dice", DICE_TAGGED_EVIDENCE_OID],
  ["legacy", GRAMINE_LEGACY_QUOTE_OID],
  ["collateral", CLOISTER_COLLATERAL_OID],
] as const;

export interface TaggedEvidence {
  quote: Uint8Array;
  /** SHA-256 of the certificate's SPKI as the attester claims it (absent for legacy certificates). */
  pubkeyHash?: Uint8Array;
  /** The freshness value the attester claims to have bound (absent for legacy certificates). */
  nonce?: Uint8Array;
}

/** Map entries in insertion order ("pubkey-hash" before "nonce", as Gramine writes them), not cborg's canonical order. */
const ENCODE: EncodeOptions = { mapSorter: () => 0 };
/** Minimal encodings only, no indefinite lengths, maps as Maps, repeated keys refused; the one tag is kept for the check below. */
const DECODE: DecodeOptions = { strict: true, allowIndefinite: false, allowUndefined: false, useMaps: true, rejectDuplicateMapKeys: true, tags: Tagged.preserve(TEE_QUOTE_CBOR_TAG) };

export function encodeTaggedEvidence(quote: Uint8Array, spkiSha256: Uint8Array, freshness: Uint8Array): Uint8Array {
  const claims = new Map<string, Uint8Array>([
    ["pubkey-hash", cborEncode([IANA_HASH_SHA256, spkiSha256], ENCODE)],
    ["nonce", freshness],
  ]);
  return cborEncode(new Tagged(TEE_QUOTE_CBOR_TAG, [quote, cborEncode(claims, ENCODE)]), ENCODE);
}

const malformed = (detail: string, cause?: unknown) =>
  new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate: the tagged evidence extension is malformed (${detail})`, { cause });

/** cborg's reason, in the words this format's readers expect where it has them. */
function cborFailure(what: string, e: unknown): AttestedTlsError {
  const message = (e as Error).message;
  const tag = /tag not supported \((\d+)\)/.exec(message)?.[1];
  if (tag !== undefined) return malformed(`${what}CBOR tag ${tag}, expected ${TEE_QUOTE_CBOR_TAG} (TEE quote)`, e);
  if (/not enough data/.test(message)) return malformed(`${what}truncated: ${message}`, e);
  return malformed(`${what}${message}`, e);
}

function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return cborDecode(bytes, DECODE);
  } catch (e) {
    throw cborFailure(what, e);
  }
}

export function decodeTaggedEvidence(bytes: Uint8Array): TaggedEvidence {
  const outer = decodeCbor(bytes, "");
  if (!(outer instanceof Tagged)) throw malformed("not a CBOR tag");
  const items: unknown = outer.value;
  if (!Array.isArray(items) || items.length !== 2 || !(items[0] instanceof Uint8Array) || !(items[1] instanceof Uint8Array)) {
    throw malformed("expected [bstr quote, bstr claims]");
  }
  const claims = decodeCbor(items[1], "claims: ");
  if (!(claims instanceof Map)) throw malformed("claims are not a CBOR map");
  const out: TaggedEvidence = { quote: items[0] };
  const pubkeyHash: unknown = claims.get("pubkey-hash");
  if (pubkeyHash !== undefined) {
    const pair = pubkeyHash instanceof Uint8Array ? decodeCbor(pubkeyHash, "pubkey-hash: ") : pubkeyHash;
    if (!Array.isArray(pair) || pair[0] !== IANA_HASH_SHA256 || !(pair[1] instanceof Uint8Array) || pair[1].length !== 32) {
      throw malformed("pubkey-hash must be [1, 32-byte SHA-256 digest]");
    }
    out.pubkeyHash = pair[1];
  }
  const nonce: unknown = claims.get("nonce");
  if (nonce !== undefined) {
    if (!(nonce instanceof Uint8Array)) throw malformed("nonce must be a byte string");
    out.nonce = nonce;
  }
  return out;
}

/** The collateral document: the evidence with its quote/report emptied. */
export function encodeCollateral(evidence: Evidence): Uint8Array {
  const empty = new Uint8Array(0);
  return encodeEvidence(evidence.teeType === "SEV-SNP" ? { ...evidence, report: empty } : { ...evidence, quote: empty });
}

/** Evidence from the collateral document and the quote taken from the evidence extension. */
export function evidenceFrom(quote: Uint8Array, collateral: Uint8Array | undefined): Evidence {
  if (!collateral) {
    // Gramine certificates carry no collateral: the quote header says SGX (0) or TDX (0x81).
    const teeType = quote.length >= 8 ? new DataView(quote.buffer, quote.byteOffset, quote.byteLength).getUint32(4, true) : -1;
    if (teeType === 0) return { teeType: "SGX", quote };
    if (teeType === 0x81) return { teeType: "TDX", quote };
    throw malformed("no Cloister collateral extension and the quote is not an SGX or TDX DCAP quote");
  }
  let doc: Evidence;
  try {
    doc = decodeEvidence(collateral);
  } catch (e) {
    throw new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate: the Cloister collateral extension is malformed: ${(e as Error).message}`, { cause: e });
  }
  return doc.teeType === "SEV-SNP" ? { ...doc, report: quote } : { ...doc, quote };
}

/** Extension values (OCTET STRING content) of interest, read from certificate DER. */
export function readAttestationExtensions(certDer: Uint8Array): { dice?: Uint8Array; legacy?: Uint8Array; collateral?: Uint8Array } {
  const what = "attested TLS certificate";
  try {
    const cert = expectTag(parseDer(certDer, "CERT_MALFORMED", what), TAG.SEQUENCE, "CERT_MALFORMED", what);
    const tbs = expectTag(children(cert, "CERT_MALFORMED", what)[0], TAG.SEQUENCE, "CERT_MALFORMED", what);
    const wrapper = children(tbs, "CERT_MALFORMED", what).find((n) => n.tag === 0xa3);
    const out: { dice?: Uint8Array; legacy?: Uint8Array; collateral?: Uint8Array } = {};
    if (!wrapper) return out;
    const list = expectTag(children(wrapper, "CERT_MALFORMED", what)[0], TAG.SEQUENCE, "CERT_MALFORMED", what);
    for (const ext of children(list, "CERT_MALFORMED", what)) {
      const parts = children(ext, "CERT_MALFORMED", what);
      const id = expectTag(parts[0], TAG.OID, "CERT_MALFORMED", what);
      const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, "CERT_MALFORMED", what).value;
      const slot = SLOTS.find(([, oid]) => isOid(id, oid))?.[0];
      if (!slot) continue;
      if (out[slot]) throw malformed(`extension ${slot} appears twice`);
      out[slot] = value;
    }
    return out;
  } catch (e) {
    if (e instanceof AttestationError) {
      throw new AttestedTlsError("ATLS_CERT_INVALID", `${what}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
