/**
 * Evidence as a self-describing JSON document, the form in which it is
 * published (on IPFS) and passed between processes. Everything in it is safe
 * to publish: quotes, reports and collateral hold no secrets.
 *
 * An enclave's document also names the public keys its report_data commits
 * to (`enclaveKeys`): the secp256k1 signer, the X25519 HPKE key and the two
 * P-256 keys (provenance, TLS), as SPKI DER hex. The registry records only the
 * first two; a verifier takes the P-256 keys from the document at the CID the
 * registry names (content-addressed, so the host cannot swap it) and accepts
 * them only when the quote's report_data commits to them.
 */
import { z } from "zod";
import { addressSchema, hex32Schema, hexSchema } from "../protocol/schemas.ts";
import type { Evidence } from "./types.ts";
import { CloisterError } from "../util/base-error.ts";

export const EVIDENCE_FORMAT = "cloister-evidence/v1";

/** The JSON shape of DcapCollateral, as validated wherever collateral crosses a boundary. */
export const dcapCollateralSchema = z.object({
  tcb_info: z.string(),
  tcb_info_signature: z.string(),
  tcb_info_issuer_chain: z.string(),
  qe_identity: z.string(),
  qe_identity_signature: z.string(),
  qe_identity_issuer_chain: z.string(),
  pck_crl: z.string(),
  pck_crl_issuer_chain: z.string(),
  root_ca_crl: z.string(),
  pck_certificate_chain: z.string().optional(),
});

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");

/** The public keys an enclave's evidence commits to (report_data, src/protocol/binding.ts). */
export const evidenceKeysSchema = z
  .object({ signer: addressSchema, hpkePublicKey: hex32Schema, provenanceKey: hexSchema, tlsKey: hexSchema })
  .strict();
export type EvidenceKeys = z.infer<typeof evidenceKeysSchema>;

const documentSchema = z.discriminatedUnion("teeType", [
  z.object({
    format: z.literal(EVIDENCE_FORMAT),
    enclaveKeys: evidenceKeysSchema.optional(),
    teeType: z.enum(["SGX", "TDX"]),
    quote: base64,
    collateral: dcapCollateralSchema.optional(),
  }),
  z.object({
    format: z.literal(EVIDENCE_FORMAT),
    teeType: z.literal("SEV-SNP"),
    enclaveKeys: evidenceKeysSchema.optional(),
    report: base64,
    vcek: base64,
    chainPem: z.string(),
  }),
]);

export class EvidenceFormatError extends CloisterError<"EVIDENCE_MALFORMED"> {
  constructor(detail: string) {
    super("EVIDENCE_MALFORMED", `evidence document is malformed: ${detail}. Expected a ${EVIDENCE_FORMAT} JSON document as produced by an enclave's attest call.`);
  }
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

/** The document of `evidence`; an enclave's names the keys its report_data commits to. */
export function encodeEvidence(evidence: Evidence, enclaveKeys?: EvidenceKeys): Uint8Array {
  const keys = enclaveKeys ? { enclaveKeys: evidenceKeysSchema.parse(enclaveKeys) } : {};
  const doc =
    evidence.teeType === "SEV-SNP"
      ? { format: EVIDENCE_FORMAT, teeType: evidence.teeType, ...keys, report: b64(evidence.report), vcek: b64(evidence.collateral.vcek), chainPem: evidence.collateral.chainPem }
      : { format: EVIDENCE_FORMAT, teeType: evidence.teeType, ...keys, quote: b64(evidence.quote), collateral: evidence.collateral };
  return new TextEncoder().encode(JSON.stringify(doc));
}

export function decodeEvidence(bytes: Uint8Array): Evidence {
  return decodeEvidenceDocument(bytes).evidence;
}

/** The evidence and, when the document names them, the enclave keys it commits to (still to be checked against report_data). */
export function decodeEvidenceDocument(bytes: Uint8Array): { evidence: Evidence; enclaveKeys?: EvidenceKeys } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new EvidenceFormatError("not UTF-8 JSON");
  }
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EvidenceFormatError(`${issue?.path.join(".") || "document"}: ${issue?.message ?? "invalid"}`);
  }
  const doc = parsed.data;
  const keys = doc.enclaveKeys ? { enclaveKeys: doc.enclaveKeys } : {};
  if (doc.teeType === "SEV-SNP") {
    return { evidence: { teeType: "SEV-SNP", report: unb64(doc.report), collateral: { vcek: unb64(doc.vcek), chainPem: doc.chainPem } }, ...keys };
  }
  const evidence: Evidence = doc.collateral
    ? { teeType: doc.teeType, quote: unb64(doc.quote), collateral: doc.collateral }
    : { teeType: doc.teeType, quote: unb64(doc.quote) };
  return { evidence, ...keys };
}
