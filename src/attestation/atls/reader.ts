/**
 * Reads any interoperable RA-TLS certificate (Cloister's, Gramine's, RATS-TLS's,
 * the Intel SGX SDK's): its evidence, claims and carried collateral, and
 * whether the evidence binds the certificate's key. The key binding is judged
 * here and reported apart from the evidence's authenticity, which needs
 * collateral and a policy (certificate.ts, the CLI).
 *
 * Key binding (tagged evidence): the pubkey-hash claim equals the hash of the
 * certificate's DER SubjectPublicKeyInfo, and the evidence's report_data is
 * SHA-256(claims buffer) followed by 32 zero bytes. Gramine's legacy
 * extension: report_data is SHA-256(SPKI) followed by 32 zero bytes.
 */
import { createHash, X509Certificate } from "node:crypto";
import { AttestationError } from "../dcap/errors.ts";
import { parseQuote } from "../dcap/quote.ts";
import { parseSnpReport } from "../snp/report.ts";
import type { DcapCollateral, Evidence, SnpCollateral, TeeType } from "../types.ts";
import { AttestedTlsError } from "./errors.ts";
import {
  CLOISTER_CLAIM_PREFIX,
  CLOISTER_SIGNER_CLAIM,
  decodeEndorsements,
  decodeTaggedEvidence,
  DICE_TAGGED_EVIDENCE_OID,
  evidenceTeeType,
  PUBKEY_HASH_ALGORITHMS,
  readAttestationExtensions,
  type PubkeyHash,
} from "./extensions.ts";

export interface AttestedCertificateInfo {
  certDer: Uint8Array;
  /** DER SubjectPublicKeyInfo of the certificate's key. */
  spki: Uint8Array;
  subject: string;
  validFrom: string;
  validTo: string;
  /** e.g. "ec secp384r1". */
  keyType: string;
  /** True when the certificate's signature verifies under its own key. */
  selfSigned: boolean;
  /** "tcg-dice": the interoperable tagged evidence extension; "gramine-legacy": Gramine's old raw-quote extension. */
  format: "tcg-dice" | "gramine-legacy";
  teeType: TeeType;
  /** The quote (or SEV-SNP report) as carried. */
  quote: Uint8Array;
  /** The 64-byte report_data of the quote or report. */
  reportData: Uint8Array;
  /** The claims buffer (tagged evidence only). */
  claimsBuffer?: Uint8Array;
  /** Every claim by name (tagged evidence only). */
  claims: Map<string, unknown>;
  pubkeyHash?: PubkeyHash;
  /** The nonce claim: the freshness value the attester bound. */
  nonce?: Uint8Array;
  /** Cloister's own claims ("cloister-…"), by name. */
  cloisterClaims: Record<string, Uint8Array>;
  /** The cloister-signer claim as a 0x address, when present. */
  signer?: string;
  /** Collateral carried in the endorsement extension, if any. */
  collateral?: DcapCollateral | SnpCollateral;
  /** True when the evidence binds this certificate's key (see the module comment). */
  keyBinding: boolean;
  /** Why the key binding fails (empty when it holds). */
  keyBindingErrors: string[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const pemBody = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;

/** The X.509 certificate as node reads it; given PEM so a certificate embedded in an extension is never taken instead. */
export function parseX509(certDer: Uint8Array): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pemBody(certDer));
  } catch (e) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", `attested TLS certificate is not valid X.509: ${(e as Error).message}`, { cause: e });
  }
  if (!Buffer.from(cert.raw).equals(Buffer.from(certDer))) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS certificate has trailing or non-DER bytes");
  }
  return cert;
}

/** DER from a PEM or DER certificate file's bytes (DER is taken as is: its quote may embed PEM certificates). */
export function certificateDer(bytes: Uint8Array): Uint8Array {
  if (bytes[0] === 0x30) return bytes;
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(Buffer.from(bytes).toString("latin1"));
  return pem ? new Uint8Array(Buffer.from(pem[1]!.replace(/\s+/g, ""), "base64")) : bytes;
}

function reportDataOf(quote: Uint8Array, teeType: TeeType): Uint8Array {
  try {
    if (teeType === "SEV-SNP") return parseSnpReport(quote).reportData;
    return parseQuote(quote).body.report.reportData;
  } catch (e) {
    if (e instanceof AttestationError) {
      throw new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate: its ${teeType} evidence cannot be read: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

function bindingErrors(reportData: Uint8Array, expectedHead: Uint8Array, what: string): string[] {
  const errors: string[] = [];
  if (hex(reportData.subarray(0, 32)) !== hex(expectedHead)) {
    errors.push(`report_data begins ${hex(reportData.subarray(0, 32))}, not ${what} ${hex(expectedHead)}: the evidence was made for other claims or another key`);
  }
  if (reportData.subarray(32).some((b) => b !== 0)) errors.push("the last 32 bytes of report_data are not zero: they would carry data the claims do not bind");
  return errors;
}

/** What node reads from the certificate; a key it cannot load is an invalid certificate, not a crash. */
function certificateFacts(certDer: Uint8Array) {
  const cert = parseX509(certDer);
  try {
    const spki = new Uint8Array(cert.publicKey.export({ type: "spki", format: "der" }));
    const details = cert.publicKey.asymmetricKeyDetails;
    return {
      certDer,
      spki,
      subject: cert.subject.replace(/\n/g, ", "),
      validFrom: new Date(cert.validFrom).toISOString(),
      validTo: new Date(cert.validTo).toISOString(),
      keyType: [cert.publicKey.asymmetricKeyType, details?.namedCurve ?? (details?.modulusLength ? `${details.modulusLength} bits` : undefined)].filter(Boolean).join(" "),
      selfSigned: cert.verify(cert.publicKey),
    };
  } catch (e) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", `attested TLS certificate has a key or dates node cannot read: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads an attested certificate (DER). Throws AttestedTlsError when it is not X.509, carries no evidence, or its extensions are malformed. */
export function readAttestedCertificate(certDer: Uint8Array): AttestedCertificateInfo {
  const base = certificateFacts(certDer);
  const { spki } = base;
  const ext = readAttestationExtensions(certDer);
  const collateral = ext.endorsements ? decodeEndorsements(ext.endorsements) : undefined;

  if (ext.evidence) {
    const tagged = decodeTaggedEvidence(ext.evidence);
    const teeType = evidenceTeeType(tagged.evidence);
    const reportData = reportDataOf(tagged.evidence, teeType);
    const errors: string[] = [];
    if (!tagged.pubkeyHash) {
      errors.push("the claims carry no pubkey-hash: nothing binds the evidence to a key");
    } else {
      const algorithm = PUBKEY_HASH_ALGORITHMS[tagged.pubkeyHash.algorithmId];
      if (!algorithm) {
        errors.push(`pubkey-hash uses hash algorithm ${tagged.pubkeyHash.algorithmId}; supported are 1 (SHA-256), 7 (SHA-384), 8 (SHA-512)`);
      } else if (createHash(algorithm).update(spki).digest("hex") !== hex(tagged.pubkeyHash.digest)) {
        errors.push(`pubkey-hash ${hex(tagged.pubkeyHash.digest)} is not the ${algorithm.toUpperCase()} of this certificate's public key: the evidence was made for another key`);
      }
    }
    errors.push(...bindingErrors(reportData, createHash("sha256").update(tagged.claimsBuffer).digest(), "SHA-256 of the claims"));
    const cloisterClaims: Record<string, Uint8Array> = {};
    for (const [name, value] of tagged.claims) {
      if (name.startsWith(CLOISTER_CLAIM_PREFIX) && value instanceof Uint8Array) cloisterClaims[name] = value;
    }
    const signer = cloisterClaims[CLOISTER_SIGNER_CLAIM];
    return {
      ...base,
      format: "tcg-dice",
      teeType,
      quote: tagged.evidence,
      reportData,
      claimsBuffer: tagged.claimsBuffer,
      claims: tagged.claims,
      ...(tagged.pubkeyHash ? { pubkeyHash: tagged.pubkeyHash } : {}),
      ...(tagged.nonce ? { nonce: tagged.nonce } : {}),
      cloisterClaims,
      ...(signer?.length === 20 ? { signer: `0x${hex(signer)}` } : {}),
      ...(collateral ? { collateral } : {}),
      keyBinding: errors.length === 0,
      keyBindingErrors: errors,
    };
  }
  if (ext.legacy) {
    const teeType = evidenceTeeType(ext.legacy);
    const reportData = reportDataOf(ext.legacy, teeType);
    const errors = bindingErrors(reportData, createHash("sha256").update(spki).digest(), "SHA-256 of the certificate's public key");
    return {
      ...base,
      format: "gramine-legacy",
      teeType,
      quote: ext.legacy,
      reportData,
      claims: new Map(),
      cloisterClaims: {},
      ...(collateral ? { collateral } : {}),
      keyBinding: errors.length === 0,
      keyBindingErrors: errors,
    };
  }
  throw new AttestedTlsError(
    "ATLS_EVIDENCE_MISSING",
    `attested TLS certificate carries no evidence extension (neither TCG DICE tagged evidence ${DICE_TAGGED_EVIDENCE_OID} nor Gramine's legacy quote); it is an ordinary certificate, not an attested one`,
  );
}

/**
 * The certificate's evidence with collateral: `collateral` when given (the
 * verifier's own), else what the certificate carries. SGX/TDX evidence may
 * stay without collateral (the verifier then says COLLATERAL_MISSING); SEV-SNP
 * evidence cannot.
 */
export function evidenceOf(info: AttestedCertificateInfo, collateral?: DcapCollateral | SnpCollateral): Evidence {
  const c = collateral ?? info.collateral;
  if (info.teeType === "SEV-SNP") {
    if (!c || !("vcek" in c)) {
      throw new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", "attested TLS certificate holds an SEV-SNP report but no VCEK and chain; pass them to the verifier");
    }
    return { teeType: "SEV-SNP", report: info.quote, collateral: c };
  }
  if (c && "vcek" in c) throw new AttestedTlsError("ATLS_EVIDENCE_MALFORMED", `attested TLS certificate holds ${info.teeType} evidence but SEV-SNP endorsements`);
  return { teeType: info.teeType, quote: info.quote, ...(c ? { collateral: c } : {}) };
}
