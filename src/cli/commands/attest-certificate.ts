/**
 * `cloister attest verify <certificate>`: an attested TLS certificate (PEM or
 * DER) in the interoperable RA-TLS format, Cloister's or another stack's. The
 * evidence is taken from its tagged-evidence extension; the key binding
 * (pubkey-hash and report_data) is judged from the certificate alone and
 * reported beside the evidence's verdict, which needs collateral: the
 * --collateral / --pccs / --vcek flags, else what the certificate carries.
 */
import { createHash } from "node:crypto";
import { certificateDer, evidenceOf, readAttestedCertificate, type AttestedCertificateInfo } from "../../attestation/atls/reader.ts";
import { AttestedTlsError } from "../../attestation/atls/errors.ts";
import type { DcapCollateral, Evidence, SnpCollateral } from "../../attestation/types.ts";
import { readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";

export type CollateralSource = "flags" | "certificate" | "none";

export interface CertificateInput {
  info: AttestedCertificateInfo;
  evidence: Evidence;
  collateralSource: CollateralSource;
}

/**
 * DER (a SEQUENCE: quotes and SNP reports never start with 0x30) or PEM text.
 * A binary quote embeds PEM certificates, so PEM is only looked for in text.
 */
export function isCertificate(bytes: Uint8Array): boolean {
  if (bytes[0] === 0x30) return true;
  const head = bytes.subarray(0, 4096);
  return head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f)) && Buffer.from(head).toString("latin1").includes("-----BEGIN CERTIFICATE-----");
}

export interface CertificateFlags {
  collateral?: string;
  pccs?: string;
  vcek?: string;
  chain?: string;
}

export async function loadCertificate(
  file: string,
  bytes: Uint8Array,
  flags: CertificateFlags,
  dcapCollateral: (quote: Uint8Array) => Promise<DcapCollateral>,
): Promise<CertificateInput> {
  let info: AttestedCertificateInfo;
  try {
    info = readAttestedCertificate(certificateDer(bytes));
  } catch (error) {
    if (error instanceof AttestedTlsError) throw new UsageError(`certificate file '${file}': ${error.message}`);
    throw error;
  }
  let collateral: DcapCollateral | SnpCollateral | undefined;
  let source: CollateralSource = info.collateral ? "certificate" : "none";
  if (info.teeType === "SEV-SNP" && (flags.vcek || flags.chain)) {
    if (!flags.vcek || !flags.chain) throw new UsageError("an SEV-SNP report needs both --vcek <der> and --chain <pem>");
    collateral = { vcek: await readInputFile(flags.vcek, "VCEK certificate"), chainPem: new TextDecoder().decode(await readInputFile(flags.chain, "ASK/ARK chain")) };
    source = "flags";
  } else if (info.teeType !== "SEV-SNP" && (flags.collateral || flags.pccs)) {
    collateral = await dcapCollateral(info.quote);
    source = "flags";
  }
  if (info.teeType === "SEV-SNP" && source === "none") throw new UsageError(`certificate file '${file}' holds an SEV-SNP report but no VCEK: pass --vcek <der> --chain <pem>`);
  return { info, evidence: evidenceOf(info, collateral), collateralSource: source };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Claim values as hex, pubkey-hash as its algorithm and digest. */
function claimsJson(info: AttestedCertificateInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of info.claims) {
    if (name === "pubkey-hash" && info.pubkeyHash) out[name] = { algorithmId: info.pubkeyHash.algorithmId, digest: hex(info.pubkeyHash.digest) };
    else out[name] = value instanceof Uint8Array ? hex(value) : value;
  }
  return out;
}

export function certificateJson(input: CertificateInput) {
  const { info } = input;
  return {
    format: info.format,
    subject: info.subject,
    validFrom: info.validFrom,
    validTo: info.validTo,
    keyType: info.keyType,
    selfSigned: info.selfSigned,
    spkiSha256: createHash("sha256").update(info.spki).digest("hex"),
    claims: claimsJson(info),
    nonce: info.nonce ? hex(info.nonce) : null,
    enclaveSigner: info.signer ?? null,
    collateral: input.collateralSource,
    keyBindingErrors: info.keyBindingErrors,
  };
}

/** The lines human output adds for a certificate. */
export function certificateLines(input: CertificateInput): string[] {
  const { info } = input;
  const lines = [
    `  key binding    ${info.keyBinding ? "yes: pubkey-hash and report_data bind the certificate's key" : "NO: the evidence does not bind the certificate's key"}`,
    ...info.keyBindingErrors.map((e) => `  key binding    ${e}`),
    `  certificate    ${info.format === "tcg-dice" ? "TCG DICE tagged evidence (interoperable RA-TLS)" : "Gramine legacy quote extension"}, ${info.keyType} key, ${info.selfSigned ? "self-signed" : "not self-signed"}`,
    `  subject        ${info.subject}`,
    `  valid          ${info.validFrom} to ${info.validTo}`,
  ];
  const claims = claimsJson(info);
  for (const [name, value] of Object.entries(claims)) lines.push(`  claim          ${name} = ${typeof value === "string" ? value : JSON.stringify(value)}`);
  const source = { flags: "from the command line", certificate: "carried in the certificate", none: "none (pass --collateral or --pccs to verify the evidence)" }[input.collateralSource];
  lines.push(`  collateral     ${source}`);
  return lines;
}
