/**
 * AMD SEV-SNP report verification: VCEK → ASK → ARK (RSA-PSS, ARK self-signed
 * and pinned), certificate validity, the report's ECDSA P-384 signature, and
 * the reported TCB and chip id against the VCEK's extensions.
 *
 * What this proves: the report was produced by AMD firmware on the chip the
 * VCEK names, at the reported TCB. What it does not: whether that TCB is
 * current (AMD publishes no TCB status like Intel's; compare the TCB claims
 * against your minimums) or whether the measurement is the one you expect
 * (that is the policy's job).
 */
import { verify as cryptoVerify } from "node:crypto";
import { AttestationError } from "../dcap/errors.ts";
import type { Claims, SnpCollateral } from "../types.ts";
import { checkIssuedBy, checkValidity, parseSnpCertificate, pemCertificates, type SnpCertificate } from "./certs.ts";
import { parseSnpReport, SNP_SIG_ALGO_ECDSA_P384_SHA384, type SnpReport, type SnpTcb } from "./report.ts";
import { PINNED_ARKS } from "./roots.ts";

export interface SnpVerifyOptions {
  /** Evaluation time, unix seconds; defaults to now. */
  now?: number;
  /** Trust this ARK (PEM) instead of the built-in pins. */
  arkPem?: string;
}

/** VCEK extension OIDs (AMD "VCEK certificate and KDS interface" spec). */
const VCEK_OID = {
  productName: "1.3.6.1.4.1.3704.1.2",
  bootloader: "1.3.6.1.4.1.3704.1.3.1",
  tee: "1.3.6.1.4.1.3704.1.3.2",
  snp: "1.3.6.1.4.1.3704.1.3.3",
  microcode: "1.3.6.1.4.1.3704.1.3.8",
  fmc: "1.3.6.1.4.1.3704.1.3.9",
  hwid: "1.3.6.1.4.1.3704.1.4",
} as const;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** An SPL extension: a DER INTEGER 0..255. */
function splExtension(vcek: SnpCertificate, oid: string, name: string): number | undefined {
  const v = vcek.extensions.get(oid);
  if (!v) return undefined;
  if (v.length < 3 || v[0] !== 0x02 || v[1] !== v.length - 2 || v.length > 4) {
    throw new AttestationError("CERT_MALFORMED", `SEV-SNP VCEK extension ${name} (${oid}) is not a small INTEGER`);
  }
  let n = 0;
  for (const b of v.subarray(2)) n = n * 256 + b;
  return n;
}

/** hwID is the raw 64-byte chip id; accept it wrapped in an OCTET STRING as well. */
function hwidExtension(vcek: SnpCertificate): Uint8Array | undefined {
  const v = vcek.extensions.get(VCEK_OID.hwid);
  if (!v) return undefined;
  if (v.length === 64) return v;
  if (v.length === 66 && v[0] === 0x04 && v[1] === 64) return v.subarray(2);
  throw new AttestationError("CERT_MALFORMED", `SEV-SNP VCEK hwID extension has ${v.length} bytes, expected the 64-byte chip id`);
}

function productName(vcek: SnpCertificate): string | undefined {
  const v = vcek.extensions.get(VCEK_OID.productName);
  if (!v || v.length < 2 || v[1] !== v.length - 2) return undefined;
  return Buffer.from(v.subarray(2)).toString("latin1");
}

function checkTcbAgainstVcek(report: SnpReport, vcek: SnpCertificate): void {
  const tcb = report.reportedTcb;
  const components: [keyof SnpTcb, string, string][] = [
    ["bootloader", VCEK_OID.bootloader, "blSPL"],
    ["tee", VCEK_OID.tee, "teeSPL"],
    ["snp", VCEK_OID.snp, "snpSPL"],
    ["microcode", VCEK_OID.microcode, "ucodeSPL"],
  ];
  if (tcb.fmc !== undefined) components.push(["fmc", VCEK_OID.fmc, "fmcSPL"]);
  for (const [field, oid, name] of components) {
    const certified = splExtension(vcek, oid, name);
    if (certified === undefined) {
      throw new AttestationError("CERT_MALFORMED", `SEV-SNP VCEK has no ${name} extension (${oid}); it cannot be matched to the report's TCB`);
    }
    if (certified !== tcb[field]) {
      throw new AttestationError(
        "TCB_LEVEL_UNMATCHED",
        `SEV-SNP reported TCB ${name} is ${tcb[field]} but the VCEK was issued for ${certified}. Fetch the VCEK for this report's reported_tcb from AMD KDS.`,
      );
    }
  }
}

function splitChain(collateral: SnpCollateral): { vcek: SnpCertificate; ask: SnpCertificate; ark: SnpCertificate } {
  if (!(collateral?.vcek instanceof Uint8Array) || typeof collateral.chainPem !== "string") {
    throw new AttestationError("COLLATERAL_MISSING", "SEV-SNP collateral needs the VCEK (DER bytes) and the ASK/ARK chain (PEM)");
  }
  const chain = pemCertificates(collateral.chainPem);
  if (chain.length !== 2) {
    throw new AttestationError("CERT_CHAIN_INVALID", `SEV-SNP chain PEM holds ${chain.length} certificates; expected exactly two, the ASK then the ARK (as served by AMD KDS cert_chain)`);
  }
  const vcek = parseSnpCertificate(collateral.vcek, "VCEK");
  const ask = parseSnpCertificate(chain[0]!, "ASK");
  const ark = parseSnpCertificate(chain[1]!, "ARK");
  const selfIssued = (c: SnpCertificate) => Buffer.compare(Buffer.from(c.issuerRaw), Buffer.from(c.subjectRaw)) === 0;
  if (selfIssued(ask) && !selfIssued(ark)) {
    throw new AttestationError("CERT_CHAIN_INVALID", `SEV-SNP chain is in the wrong order: the first certificate (CN=${ask.subjectCn}) is the self-signed root. Give the ASK first, then the ARK.`);
  }
  return { vcek, ask, ark };
}

function checkRoot(ark: SnpCertificate, arkPem: string | undefined): string {
  if (Buffer.compare(Buffer.from(ark.issuerRaw), Buffer.from(ark.subjectRaw)) !== 0) {
    throw new AttestationError("CERT_CHAIN_INVALID", `SEV-SNP ARK (CN=${ark.subjectCn}) is not self-issued; the second certificate of the chain must be the AMD root`);
  }
  checkIssuedBy(ark, ark);
  if (arkPem !== undefined) {
    const pinned = pemCertificates(arkPem);
    if (pinned.length !== 1) throw new AttestationError("CERT_MALFORMED", "arkPem must hold exactly one certificate");
    const expected = parseSnpCertificate(pinned[0]!, "pinned ARK");
    if (expected.sha256 !== ark.sha256) {
      throw new AttestationError("UNTRUSTED_ROOT", `SEV-SNP ARK (CN=${ark.subjectCn}, SHA-256 ${ark.sha256}) is not the ARK passed as trusted (SHA-256 ${expected.sha256})`);
    }
    return ark.subjectCn;
  }
  const name = PINNED_ARKS.get(ark.sha256);
  if (!name) {
    throw new AttestationError(
      "UNTRUSTED_ROOT",
      `SEV-SNP ARK (CN=${ark.subjectCn}, SHA-256 ${ark.sha256}) is not a pinned AMD root (pinned: ${[...PINNED_ARKS.values()].join(", ")}). Pass arkPem to trust another root deliberately.`,
    );
  }
  return name;
}

function checkReportSignature(report: SnpReport, vcek: SnpCertificate): void {
  const details = vcek.publicKey.asymmetricKeyDetails;
  if (vcek.publicKey.asymmetricKeyType !== "ec" || details?.namedCurve !== "secp384r1") {
    throw new AttestationError("CERT_MALFORMED", "SEV-SNP VCEK public key is not an ECDSA P-384 key");
  }
  const signature = Buffer.concat([report.signatureR, report.signatureS]);
  const ok = cryptoVerify("sha384", report.signedBytes, { key: vcek.publicKey, dsaEncoding: "ieee-p1363" }, signature);
  if (!ok) {
    throw new AttestationError("REPORT_SIGNATURE_INVALID", "SEV-SNP report signature does not verify with the VCEK: the report was altered or the VCEK belongs to another chip or TCB");
  }
}

const tcbClaim = (t: SnpTcb) => ({ ...t });

function claimsOf(report: SnpReport, vcek: SnpCertificate, ark: SnpCertificate, arkName: string): Claims {
  const p = report.policy;
  return {
    teeType: "SEV-SNP",
    quoteVersion: report.version,
    measurement: hex(report.measurement),
    reportData: hex(report.reportData),
    debug: p.debugAllowed,
    simulated: false,
    advisoryIds: [],
    svn: report.guestSvn,
    extra: {
      vmpl: report.vmpl,
      policy: `0x${p.raw.toString(16)}`,
      policyFlags: { abiMajor: p.abiMajor, abiMinor: p.abiMinor, smtAllowed: p.smtAllowed, migrateMa: p.migrateMa, debugAllowed: p.debugAllowed, singleSocket: p.singleSocket },
      guestSvn: report.guestSvn,
      familyId: hex(report.familyId),
      imageId: hex(report.imageId),
      hostData: hex(report.hostData),
      idKeyDigest: hex(report.idKeyDigest),
      authorKeyDigest: hex(report.authorKeyDigest),
      authorKeyEn: report.authorKeyEn,
      reportId: hex(report.reportId),
      reportIdMa: hex(report.reportIdMa),
      chipId: hex(report.chipId),
      maskChipId: report.maskChipId,
      signatureAlgo: report.signatureAlgo,
      platformInfo: `0x${report.platformInfo.toString(16)}`,
      currentTcb: tcbClaim(report.currentTcb),
      reportedTcb: tcbClaim(report.reportedTcb),
      committedTcb: tcbClaim(report.committedTcb),
      launchTcb: tcbClaim(report.launchTcb),
      currentVersion: report.currentVersion,
      committedVersion: report.committedVersion,
      ...(report.cpuid ? { cpuid: report.cpuid } : {}),
      productName: productName(vcek),
      ark: arkName,
      arkSha256: ark.sha256,
    },
  };
}

export async function verifySnpReport(report: Uint8Array, collateral: SnpCollateral, options: SnpVerifyOptions = {}): Promise<{ claims: Claims }> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const parsed = parseSnpReport(report);
  if (parsed.signatureAlgo !== SNP_SIG_ALGO_ECDSA_P384_SHA384) {
    throw new AttestationError("QUOTE_UNSUPPORTED", `SEV-SNP report signature algorithm ${parsed.signatureAlgo} is not supported (only 1, ECDSA P-384 with SHA-384)`);
  }
  if (parsed.signingKey !== 0) {
    throw new AttestationError("QUOTE_UNSUPPORTED", `SEV-SNP report is signed by ${parsed.signingKey === 1 ? "a VLEK" : `signing key ${parsed.signingKey}`}; only VCEK-signed reports are supported`);
  }

  const { vcek, ask, ark } = splitChain(collateral);
  const arkName = checkRoot(ark, options.arkPem);
  checkIssuedBy(ask, ark);
  checkIssuedBy(vcek, ask);
  for (const cert of [ark, ask, vcek]) checkValidity(cert, now);

  checkReportSignature(parsed, vcek);
  checkTcbAgainstVcek(parsed, vcek);
  if (!parsed.maskChipId) {
    const hwid = hwidExtension(vcek);
    if (!hwid) throw new AttestationError("CERT_MALFORMED", "SEV-SNP VCEK has no hwID extension to match the report's chip id");
    if (hex(hwid) !== hex(parsed.chipId)) {
      throw new AttestationError("COLLATERAL_MISMATCH", `SEV-SNP report chip id ${hex(parsed.chipId).slice(0, 16)}… differs from the VCEK's hwID ${hex(hwid).slice(0, 16)}…: the VCEK is for another chip`);
    }
  }
  return { claims: claimsOf(parsed, vcek, ark, arkName) };
}
