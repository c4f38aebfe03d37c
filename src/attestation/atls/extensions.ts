/**
 * The X.509 extensions of interoperable RA-TLS certificates (CCC Attestation
 * SIG, "Interoperable RA-TLS": the format Gramine, RATS-TLS and the Intel SGX
 * SDK share), and Cloister's use of them.
 *
 * - Evidence, TCG DICE tagged evidence (OID 2.23.133.5.4.9): CBOR
 *   tag 60000 (Intel TEE quote) wrapping [bstr evidence, bstr claims-buffer].
 *   claims-buffer is a CBOR map of text names to byte strings:
 *   "pubkey-hash" = bstr(CBOR [hash-alg-id, hash of the certificate's DER
 *   SubjectPublicKeyInfo]) (IANA named-information ids: 1 SHA-256, 7 SHA-384,
 *   8 SHA-512), optional "nonce", and Cloister's own claims, all named
 *   "cloister-…" so they never collide with standard names. The evidence's
 *   report_data is SHA-256(claims-buffer) followed by 32 zero bytes.
 * - Endorsements, TCG DICE endorsement manifest (OID 2.23.133.5.4.2): the
 *   collateral, tag 60000 wrapping the 8-entry array of Open Enclave's SGX
 *   endorsement fields (version, TCB info, its chain, PCK CRL, root CA CRL,
 *   the CRLs' chain, QE identity, its chain; strings NUL-terminated, CRLs DER).
 *   Optional: a verifier may bring collateral of its own.
 * - Gramine's legacy extension (OID 1.2.840.113741.1337.6): the raw quote,
 *   report_data = SHA-256(SPKI) || zeros. Read only.
 *
 * SEV-SNP is not covered by the interoperable format. Cloister carries an SNP
 * report in the same envelope (readers tell it from a DCAP quote by its header)
 * and its VCEK and chain as ["cloister-sev-snp", bstr VCEK, text chain] in the
 * endorsement manifest: a Cloister-only use, documented in docs/attestation.md.
 */
import { AttestationError } from "../dcap/errors.ts";
import { children, expectTag, isOid, parseDer, readNode, TAG } from "../dcap/der.ts";
import type { DcapCollateral, SnpCollateral, TeeType } from "../types.ts";
import { decode as cborDecode, encode as cborEncode, Tagged, type DecodeOptions, type EncodeOptions } from "cborg";
import { AttestedTlsError } from "./errors.ts";

export const DICE_TAGGED_EVIDENCE_OID = "2.23.133.5.4.9";
export const DICE_ENDORSEMENT_MANIFEST_OID = "2.23.133.5.4.2";
export const GRAMINE_LEGACY_QUOTE_OID = "1.2.840.113741.1337.6";
/** CBOR tag for an Intel TEE (SGX/TDX ECDSA) quote, as Gramine, RATS-TLS and the Intel SGX SDK write it. */
export const TEE_QUOTE_CBOR_TAG = 60000;
export const PUBKEY_HASH_CLAIM = "pubkey-hash";
export const NONCE_CLAIM = "nonce";
/** Every Cloister claim name starts so; the interoperable format's names never do. */
export const CLOISTER_CLAIM_PREFIX = "cloister-";
/** The enclave's signer address (20 bytes). */
export const CLOISTER_SIGNER_CLAIM = "cloister-signer";
/** Open Enclave's SGX endorsements version, the first entry of the endorsement array. */
const OE_SGX_ENDORSEMENTS_VERSION = 1;
const SNP_ENDORSEMENT_KIND = "cloister-sev-snp";

/** IANA named-information hash ids the format requires a verifier to support. */
export const PUBKEY_HASH_ALGORITHMS: Readonly<Record<number, "sha256" | "sha384" | "sha512">> = { 1: "sha256", 7: "sha384", 8: "sha512" };
const IANA_SHA256 = 1;

/** Map entries in insertion order ("pubkey-hash" first, as the other stacks write them), not cborg's canonical order. */
const ENCODE: EncodeOptions = { mapSorter: () => 0 };
/** Minimal encodings only, no indefinite lengths, maps as Maps, repeated keys refused; the one tag is kept for the check below. */
const DECODE: DecodeOptions = { strict: true, allowIndefinite: false, allowUndefined: false, useMaps: true, rejectDuplicateMapKeys: true, tags: Tagged.preserve(TEE_QUOTE_CBOR_TAG) };

export interface PubkeyHash {
  /** IANA named-information id. */
  algorithmId: number;
  digest: Uint8Array;
}

export interface TaggedEvidence {
  tag: number;
  /** The quote (or SNP report). */
  evidence: Uint8Array;
  /** The claims buffer exactly as carried: report_data binds its SHA-256. */
  claimsBuffer: Uint8Array;
  /** Every claim, by name. */
  claims: Map<string, unknown>;
  pubkeyHash?: PubkeyHash;
  nonce?: Uint8Array;
}

const malformed = (detail: string, cause?: unknown) =>
  new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate: the tagged evidence extension is malformed (${detail})`, { cause });

/** The claims buffer: pubkey-hash, then the nonce, then Cloister's claims by name. */
export function encodeClaims(spkiSha256: Uint8Array, options: { nonce?: Uint8Array; claims?: Readonly<Record<string, Uint8Array>> } = {}): Uint8Array {
  const claims = new Map<string, Uint8Array>([[PUBKEY_HASH_CLAIM, cborEncode([IANA_SHA256, spkiSha256], ENCODE)]]);
  if (options.nonce) claims.set(NONCE_CLAIM, options.nonce);
  for (const name of Object.keys(options.claims ?? {}).sort()) {
    if (!/^cloister-[a-z0-9][a-z0-9-]*$/.test(name)) {
      throw new TypeError(`attested TLS claim name '${name}' must start with '${CLOISTER_CLAIM_PREFIX}' (lowercase letters, digits, '-') so it never collides with the standard claims`);
    }
    const value = options.claims![name]!;
    if (!(value instanceof Uint8Array)) throw new TypeError(`attested TLS claim '${name}' must be bytes`);
    claims.set(name, value);
  }
  return cborEncode(claims, ENCODE);
}

export function encodeTaggedEvidence(evidence: Uint8Array, claimsBuffer: Uint8Array): Uint8Array {
  return cborEncode(new Tagged(TEE_QUOTE_CBOR_TAG, [evidence, claimsBuffer]), ENCODE);
}

/** cborg's reason, in the words this format's readers expect where it has them. */
function cborFailure(what: string, e: unknown): AttestedTlsError {
  const message = (e as Error).message;
  const tag = /tag not supported \((\d+)\)/.exec(message)?.[1];
  if (tag !== undefined) return malformed(`${what}CBOR tag ${tag}, expected ${TEE_QUOTE_CBOR_TAG} (Intel TEE quote)`, e);
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

function decodePubkeyHash(value: unknown): PubkeyHash {
  // The format says a byte string holding the encoded array; the bare array is read too.
  const pair = value instanceof Uint8Array ? decodeCbor(value, "pubkey-hash: ") : value;
  if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "number" || !(pair[1] instanceof Uint8Array)) {
    throw malformed("pubkey-hash must be [hash-alg-id, bstr digest]");
  }
  return { algorithmId: pair[0], digest: pair[1] };
}

export function decodeTaggedEvidence(bytes: Uint8Array): TaggedEvidence {
  const outer = decodeCbor(bytes, "");
  if (!(outer instanceof Tagged)) throw malformed("not a CBOR tag");
  const items: unknown = outer.value;
  if (!Array.isArray(items) || items.length !== 2 || !(items[0] instanceof Uint8Array) || !(items[1] instanceof Uint8Array)) {
    throw malformed("expected [bstr evidence, bstr claims]");
  }
  const claims = decodeCbor(items[1], "claims: ");
  if (!(claims instanceof Map)) throw malformed("claims are not a CBOR map");
  for (const key of claims.keys()) if (typeof key !== "string") throw malformed("claim names must be text strings");
  const out: TaggedEvidence = { tag: outer.tag, evidence: items[0], claimsBuffer: items[1], claims: claims as Map<string, unknown> };
  const pubkeyHash: unknown = claims.get(PUBKEY_HASH_CLAIM);
  if (pubkeyHash !== undefined) out.pubkeyHash = decodePubkeyHash(pubkeyHash);
  const nonce: unknown = claims.get(NONCE_CLAIM);
  if (nonce !== undefined) {
    if (!(nonce instanceof Uint8Array)) throw malformed("nonce must be a byte string");
    out.nonce = nonce;
  }
  return out;
}

/** What the evidence bytes are, from their header: a DCAP quote (v3-v5, ECDSA key type 2/3) of SGX or TDX, or an SEV-SNP report. */
export function evidenceTeeType(evidence: Uint8Array): TeeType {
  if (evidence.length >= 8) {
    const view = new DataView(evidence.buffer, evidence.byteOffset, evidence.byteLength);
    const version = view.getUint16(0, true);
    const keyType = view.getUint16(2, true);
    if (version >= 3 && version <= 5 && (keyType === 2 || keyType === 3)) {
      const tee = view.getUint32(4, true);
      if (tee === 0) return "SGX";
      if (tee === 0x81) return "TDX";
    }
    if (evidence.length === 0x4a0 && [2, 3, 5].includes(view.getUint32(0, true))) return "SEV-SNP";
  }
  throw malformed("the evidence is neither an SGX/TDX DCAP quote nor an SEV-SNP report");
}

// --- Endorsements -----------------------------------------------------------

const utf8 = new TextEncoder();
const nulTerminated = (text: string) => utf8.encode(`${text}\0`);
const unhex = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));

/** Intel PCS's response body for a signed JSON document, rebuilt from its exact signed text. */
const signedBody = (name: string, text: string, signature: string) => `{"${name}":${text},"signature":"${signature}"}`;

export function encodeEndorsements(collateral: DcapCollateral | SnpCollateral): Uint8Array {
  if ("vcek" in collateral) {
    return cborEncode(new Tagged(TEE_QUOTE_CBOR_TAG, [SNP_ENDORSEMENT_KIND, collateral.vcek, collateral.chainPem]), ENCODE);
  }
  const c = collateral;
  return cborEncode(
    new Tagged(TEE_QUOTE_CBOR_TAG, [
      OE_SGX_ENDORSEMENTS_VERSION,
      nulTerminated(signedBody("tcbInfo", c.tcb_info, c.tcb_info_signature)),
      nulTerminated(c.tcb_info_issuer_chain),
      Uint8Array.from([...unhex(c.pck_crl), 0]),
      Uint8Array.from([...unhex(c.root_ca_crl), 0]),
      nulTerminated(c.pck_crl_issuer_chain),
      nulTerminated(signedBody("enclaveIdentity", c.qe_identity, c.qe_identity_signature)),
      nulTerminated(c.qe_identity_issuer_chain),
    ]),
    ENCODE,
  );
}

const badEndorsements = (detail: string, cause?: unknown) =>
  new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate: the endorsement extension is malformed (${detail})`, { cause });

function text(value: unknown, what: string): string {
  if (!(value instanceof Uint8Array)) throw badEndorsements(`${what} must be a byte string`);
  const end = value.length > 0 && value[value.length - 1] === 0 ? value.length - 1 : value.length;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(value.subarray(0, end));
  } catch (e) {
    throw badEndorsements(`${what} is not UTF-8 text`, e);
  }
}

/** A CRL as hex DER, from DER (NUL-terminated or not) or PEM. */
function crlHex(value: unknown, what: string): string {
  if (!(value instanceof Uint8Array)) throw badEndorsements(`${what} must be a byte string`);
  if (value[0] === 0x2d /* '-' */) {
    const body = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text(value, what))?.[1];
    if (!body) throw badEndorsements(`${what} is neither DER nor a PEM CRL`);
    return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("hex");
  }
  try {
    return Buffer.from(readNode(value, 0, "COLLATERAL_MALFORMED", what).raw).toString("hex");
  } catch (e) {
    throw badEndorsements(`${what}: ${(e as Error).message}`, e);
  }
}

function signedDocument(value: unknown, name: string, what: string): { text: string; signature: string } {
  const body = text(value, what);
  const match = new RegExp(`^\\s*\\{\\s*"${name}"\\s*:\\s*([\\s\\S]*\\S)\\s*,\\s*"signature"\\s*:\\s*"([0-9a-fA-F]+)"\\s*\\}\\s*$`).exec(body);
  if (!match) throw badEndorsements(`${what} is not Intel's {"${name}": …, "signature": "…"} document`);
  return { text: match[1]!, signature: match[2]! };
}

/** The collateral carried in an endorsement extension. */
export function decodeEndorsements(bytes: Uint8Array): DcapCollateral | SnpCollateral {
  let outer: unknown;
  try {
    outer = cborDecode(bytes, DECODE);
  } catch (e) {
    throw badEndorsements((e as Error).message, e);
  }
  if (!(outer instanceof Tagged) || !Array.isArray(outer.value)) throw badEndorsements(`expected tag ${TEE_QUOTE_CBOR_TAG} wrapping an array`);
  const items = outer.value as unknown[];
  if (items[0] === SNP_ENDORSEMENT_KIND) {
    if (items.length !== 3 || !(items[1] instanceof Uint8Array) || typeof items[2] !== "string") throw badEndorsements("SEV-SNP endorsements must be [kind, bstr VCEK, text chain]");
    return { vcek: items[1], chainPem: items[2] };
  }
  if (typeof items[0] !== "number" || (items.length !== 8 && items.length !== 9)) {
    throw badEndorsements("SGX/TDX endorsements must be [version, 7 fields, optional creation time]");
  }
  const tcb = signedDocument(items[1], "tcbInfo", "TCB info");
  const qe = signedDocument(items[6], "enclaveIdentity", "QE identity");
  return {
    tcb_info: tcb.text,
    tcb_info_signature: tcb.signature,
    tcb_info_issuer_chain: text(items[2], "TCB info issuer chain"),
    pck_crl: crlHex(items[3], "PCK CRL"),
    root_ca_crl: crlHex(items[4], "root CA CRL"),
    pck_crl_issuer_chain: text(items[5], "PCK CRL issuer chain"),
    qe_identity: qe.text,
    qe_identity_signature: qe.signature,
    qe_identity_issuer_chain: text(items[7], "QE identity issuer chain"),
  };
}

// --- Reading the extensions --------------------------------------------------

const SLOTS = [
  ["evidence", DICE_TAGGED_EVIDENCE_OID],
  ["endorsements", DICE_ENDORSEMENT_MANIFEST_OID],
  ["legacy", GRAMINE_LEGACY_QUOTE_OID],
] as const;

export type AttestationExtensions = { evidence?: Uint8Array; endorsements?: Uint8Array; legacy?: Uint8Array };

/** Extension values (OCTET STRING content) of interest, read from certificate DER. */
export function readAttestationExtensions(certDer: Uint8Array): AttestationExtensions {
  const what = "attested TLS certificate";
  try {
    const cert = expectTag(parseDer(certDer, "CERT_MALFORMED", what), TAG.SEQUENCE, "CERT_MALFORMED", what);
    const tbs = expectTag(children(cert, "CERT_MALFORMED", what)[0], TAG.SEQUENCE, "CERT_MALFORMED", what);
    const wrapper = children(tbs, "CERT_MALFORMED", what).find((n) => n.tag === 0xa3);
    const out: AttestationExtensions = {};
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
