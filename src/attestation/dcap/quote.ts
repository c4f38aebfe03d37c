/**
 * Intel DCAP ECDSA quote parsing: SGX v3, TDX v4, and v5 (SGX report, TD
 * report 1.0 or 1.5). Layouts follow Intel's "SGX ECDSA Quote Library API"
 * and "TDX DCAP Quote Generation Library" specifications. Every length read
 * from the quote is bounds-checked; nothing here verifies a signature.
 */
import { AttestationError } from "./errors.ts";
import { ByteReader } from "./bytes.ts";

export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
const ATT_KEY_ECDSA_P256 = 2;
const CERT_TYPE_PCK_CHAIN = 5;
const CERT_TYPE_QE_REPORT = 6;
const HEADER_LEN = 48;
export const SGX_REPORT_LEN = 384;
export const TD10_REPORT_LEN = 584;
export const TD15_REPORT_LEN = 648;

export interface QuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  qeSvn: number;
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

/** An SGX enclave report (the ISV enclave's, or the quoting enclave's). */
export interface SgxReport {
  cpuSvn: Uint8Array;
  miscSelect: number;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
}

export interface TdReport {
  /** "td10" (TDX 1.0) or "td15" (TDX 1.5). */
  type: "td10" | "td15";
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmrs: Uint8Array[];
  reportData: Uint8Array;
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

export type QuoteBody = { kind: "sgx"; report: SgxReport } | { kind: "td"; report: TdReport };

export interface ParsedQuote {
  header: QuoteHeader;
  body: QuoteBody;
  /** The bytes the attestation key signed: header and body (v5: with the body descriptor). */
  signedBytes: Uint8Array;
  signature: Uint8Array;
  /** Raw uncompressed P-256 point without the 0x04 prefix (x || y). */
  attestationKey: Uint8Array;
  qeReport: SgxReport;
  qeReportBytes: Uint8Array;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  certificationDataType: number;
  certificationData: Uint8Array;
}

export function parseSgxReport(bytes: Uint8Array, what: string): SgxReport {
  const r = new ByteReader(bytes, what);
  const cpuSvn = r.take(16, "CPUSVN");
  const miscSelect = r.u32("MISCSELECT");
  r.take(28, "reserved");
  const attributes = r.take(16, "ATTRIBUTES");
  const mrEnclave = r.take(32, "MRENCLAVE");
  r.take(32, "reserved");
  const mrSigner = r.take(32, "MRSIGNER");
  r.take(96, "reserved");
  const isvProdId = r.u16("ISVPRODID");
  const isvSvn = r.u16("ISVSVN");
  r.take(60, "reserved");
  const reportData = r.take(64, "REPORTDATA");
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}

function parseTdReport(bytes: Uint8Array, type: "td10" | "td15"): TdReport {
  const r = new ByteReader(bytes, `TD report (${type})`);
  const report: TdReport = {
    type,
    teeTcbSvn: r.take(16, "TEE_TCB_SVN"),
    mrSeam: r.take(48, "MRSEAM"),
    mrSignerSeam: r.take(48, "MRSIGNERSEAM"),
    seamAttributes: r.take(8, "SEAMATTRIBUTES"),
    tdAttributes: r.take(8, "TDATTRIBUTES"),
    xfam: r.take(8, "XFAM"),
    mrTd: r.take(48, "MRTD"),
    mrConfigId: r.take(48, "MRCONFIGID"),
    mrOwner: r.take(48, "MROWNER"),
    mrOwnerConfig: r.take(48, "MROWNERCONFIG"),
    rtmrs: [r.take(48, "RTMR0"), r.take(48, "RTMR1"), r.take(48, "RTMR2"), r.take(48, "RTMR3")],
    reportData: r.take(64, "REPORTDATA"),
  };
  if (type === "td15") {
    report.teeTcbSvn2 = r.take(16, "TEE_TCB_SVN_2");
    report.mrServiceTd = r.take(48, "MRSERVICETD");
  }
  return report;
}

function malformed(message: string): AttestationError {
  return new AttestationError("QUOTE_MALFORMED", message);
}

/** Parses a DCAP quote. Throws AttestationError (QUOTE_MALFORMED / QUOTE_UNSUPPORTED), never anything else. */
export function parseQuote(quote: Uint8Array): ParsedQuote {
  if (!(quote instanceof Uint8Array)) throw malformed("quote must be a Uint8Array");
  const r = new ByteReader(quote, "quote");
  const header: QuoteHeader = {
    version: r.u16("version"),
    attestationKeyType: r.u16("attestation key type"),
    teeType: r.u32("TEE type"),
    qeSvn: r.u16("QE SVN"),
    pceSvn: r.u16("PCE SVN"),
    qeVendorId: r.take(16, "QE vendor ID"),
    userData: r.take(20, "user data"),
  };
  if (header.version !== 3 && header.version !== 4 && header.version !== 5) {
    throw new AttestationError("QUOTE_UNSUPPORTED", `quote version ${header.version} is not supported (expected 3, 4 or 5)`);
  }
  if (header.attestationKeyType !== ATT_KEY_ECDSA_P256) {
    throw new AttestationError(
      "QUOTE_UNSUPPORTED",
      `attestation key type ${header.attestationKeyType} is not supported (only ECDSA P-256, type 2)`,
    );
  }
  if (header.teeType !== TEE_TYPE_SGX && header.teeType !== TEE_TYPE_TDX) {
    throw new AttestationError("QUOTE_UNSUPPORTED", `TEE type 0x${header.teeType.toString(16)} is neither SGX (0) nor TDX (0x81)`);
  }
  if (header.version === 3 && header.teeType !== TEE_TYPE_SGX) throw malformed("a version 3 quote must be an SGX quote");
  if (header.version === 4 && header.teeType !== TEE_TYPE_TDX && header.teeType !== TEE_TYPE_SGX) {
    throw malformed("unknown TEE type in version 4 quote");
  }

  let body: QuoteBody;
  if (header.version === 5) {
    const bodyType = r.u16("body type");
    const bodySize = r.u32("body size");
    const expected = bodyType === 1 ? SGX_REPORT_LEN : bodyType === 2 ? TD10_REPORT_LEN : bodyType === 3 ? TD15_REPORT_LEN : -1;
    if (expected < 0) throw new AttestationError("QUOTE_UNSUPPORTED", `quote body type ${bodyType} is unknown (expected 1, 2 or 3)`);
    if (bodySize !== expected) throw malformed(`quote body type ${bodyType} must be ${expected} bytes, header says ${bodySize}`);
    if ((bodyType === 1) !== (header.teeType === TEE_TYPE_SGX)) throw malformed("quote body type does not match the header's TEE type");
    const raw = r.take(bodySize, "quote body");
    body = bodyType === 1
      ? { kind: "sgx", report: parseSgxReport(raw, "SGX report") }
      : { kind: "td", report: parseTdReport(raw, bodyType === 2 ? "td10" : "td15") };
  } else if (header.teeType === TEE_TYPE_TDX) {
    body = { kind: "td", report: parseTdReport(r.take(TD10_REPORT_LEN, "TD report"), "td10") };
  } else {
    body = { kind: "sgx", report: parseSgxReport(r.take(SGX_REPORT_LEN, "SGX report"), "SGX report") };
  }
  const signedBytes = quote.subarray(0, r.offset);
  if (signedBytes.length < HEADER_LEN) throw malformed("quote header truncated");

  const sigLen = r.u32("signature data length");
  const sig = new ByteReader(r.take(sigLen, "signature data"), "quote signature data");
  // TDX quotes from configfs-tsm come zero-padded to a fixed size; anything else after the signature data is refused.
  if (r.bytes.subarray(r.offset).some((b) => b !== 0)) {
    throw malformed(`${r.remaining} unexpected non-zero bytes after the quote's signature data`);
  }
  const signature = sig.take(64, "quote signature");
  const attestationKey = sig.take(64, "attestation public key");

  // v3 puts the QE report directly here; v4/v5 wrap it in certification data of type 6.
  let qe: ByteReader = sig;
  if (header.version !== 3) {
    const type = sig.u16("certification data type");
    const size = sig.u32("certification data size");
    if (type !== CERT_TYPE_QE_REPORT) {
      throw new AttestationError("QUOTE_UNSUPPORTED", `certification data type ${type} is not supported (expected 6, QE report)`);
    }
    qe = new ByteReader(sig.take(size, "QE report certification data"), "QE report certification data");
    if (sig.remaining !== 0) throw malformed("unexpected bytes after the QE report certification data");
  }
  const qeReportBytes = qe.take(SGX_REPORT_LEN, "QE report");
  const qeReportSignature = qe.take(64, "QE report signature");
  const authLen = qe.u16("QE authentication data length");
  const qeAuthData = qe.take(authLen, "QE authentication data");
  const certificationDataType = qe.u16("PCK certification data type");
  const certLen = qe.u32("PCK certification data size");
  const certificationData = qe.take(certLen, "PCK certification data");
  if (qe.remaining !== 0) throw malformed(`${qe.remaining} unexpected bytes after the PCK certification data`);

  return {
    header,
    body,
    signedBytes,
    signature,
    attestationKey,
    qeReport: parseSgxReport(qeReportBytes, "QE report"),
    qeReportBytes,
    qeReportSignature,
    qeAuthData,
    certificationDataType,
    certificationData,
  };
}

/** The PEM PCK chain embedded in the quote (certification data type 5), or undefined. */
export function embeddedPckChain(q: ParsedQuote): string | undefined {
  if (q.certificationDataType !== CERT_TYPE_PCK_CHAIN) return undefined;
  return Buffer.from(q.certificationData).toString("latin1").replace(/\0+$/, "");
}
