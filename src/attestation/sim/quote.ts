/**
 * Simulated quoting: SGX ECDSA quotes, version 3, byte for byte in Intel's
 * DCAP layout (sgx_quote_3_t):
 *
 *   0    header (48): version=3, att_key_type=2 (ECDSA-256-with-P-256),
 *        att_key_data_0 / TEE type=0, qe_svn, pce_svn, qe_vendor_id, user_data
 *   48   ISV enclave report body (384, sgx_report_body_t)
 *   432  signature data length (u32)
 *   436  ECDSA signature over bytes [0, 432) by the attestation key (r||s, 64)
 *   500  attestation public key (x||y, 64)
 *   564  QE report body (384)
 *   948  QE report signature by the PCK key (r||s, 64)
 *   1012 QE authentication data (u16 length + bytes)
 *        certification data (u16 type=5, u32 size, PEM chain leaf|PCK CA|root)
 *
 * The QE report's report_data[0..32] = SHA-256(attestation key || QE auth data).
 * All integers little-endian. The quoting enclave here is software: the
 * quote proves only that someone holding the simulated PKI made it.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import type { SgxReport } from "../dcap/quote.ts";
import { SIMULATED_QUOTE_MARK } from "../dcap/simulated-marks.ts";
import { signRaw } from "./keys.ts";
import { pckChainPem, type SimPki, type SimPlatform } from "./pki.ts";
import { CloisterError } from "../../util/base-error.ts";

export const SGX_QUOTE_HEADER_LEN = 48;
export const SGX_REPORT_BODY_LEN = 384;
export const QE_VENDOR_ID_INTEL = "939a7233f79c4ca9940a0db3957f0607";
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
export const CERT_DATA_PCK_CHAIN = 5;

/** SGX ATTRIBUTES.FLAGS bits. */
export const SGX_FLAG_INIT = 0x01n;
export const SGX_FLAG_DEBUG = 0x02n;
export const SGX_FLAG_MODE64BIT = 0x04n;
export const SGX_FLAG_PROVISION_KEY = 0x10n;

const encoder = new TextEncoder();
const labelHash = (label: string): Uint8Array => sha256(encoder.encode(label));

/** Identity of the simulated quoting enclave (what the simulated QE identity collateral pins). */
export const SIM_QE = {
  mrEnclave: labelHash("Cloister SIMULATED quoting enclave code"),
  mrSigner: labelHash("Cloister SIMULATED quoting enclave signer"),
  isvProdId: 1,
  isvSvn: 8,
  /** INIT | MODE64BIT | PROVISIONKEY, as Intel's QE. */
  flags: SGX_FLAG_INIT | SGX_FLAG_MODE64BIT | SGX_FLAG_PROVISION_KEY,
} as const;

/** QE authentication data; Intel's QE emits these 32 bytes (0x00..0x1f) by default. */
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);
/** XFRM: x87, SSE and AVX state enabled. */
const DEFAULT_XFRM = 0x07n;

export type SimQuoteErrorCode = "SIM_QUOTE_BAD_INPUT" | "SIM_PROVIDER_NO_PKI";

export class SimQuoteError extends CloisterError<SimQuoteErrorCode> {}

export interface SgxReportInput {
  /** 32 bytes, hex. */
  mrEnclave: string;
  /** 32 bytes, hex. */
  mrSigner: string;
  isvProdId: number;
  isvSvn: number;
  /** Exactly 64 bytes. */
  reportData: Uint8Array;
  /** Sets ATTRIBUTES.FLAGS.DEBUG. */
  debug?: boolean;
  /** Full 16-byte ATTRIBUTES (flags u64 LE || xfrm u64 LE); overrides `debug`. */
  attributes?: Uint8Array;
  /** 16 bytes; defaults to the platform's TCB components. */
  cpuSvn?: Uint8Array;
  miscSelect?: number;
}

function hex32(name: string, value: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", `${name} must be 32 bytes of hex (64 characters), got "${value}".`);
  return new Uint8Array(Buffer.from(value, "hex"));
}

function u16(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", `${name} must be an integer in 0..65535, got ${value}.`);
  return value;
}

function attributesOf(flags: bigint, xfrm: bigint): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, flags, true);
  view.setBigUint64(8, xfrm, true);
  return out;
}

/** sgx_report_body_t: fields not listed (reserved, ISV ext/family IDs, CONFIGID/SVN) are zero. */
function encodeReportBody(body: SgxReport): Uint8Array {
  const out = new Uint8Array(SGX_REPORT_BODY_LEN);
  const view = new DataView(out.buffer);
  out.set(body.cpuSvn, 0);
  view.setUint32(16, body.miscSelect, true);
  out.set(body.attributes, 48);
  out.set(body.mrEnclave, 64);
  out.set(body.mrSigner, 128);
  view.setUint16(256, body.isvProdId, true);
  view.setUint16(258, body.isvSvn, true);
  out.set(body.reportData, 320);
  return out;
}

function encodeHeader(platform: SimPlatform): Uint8Array {
  const out = new Uint8Array(SGX_QUOTE_HEADER_LEN);
  const view = new DataView(out.buffer);
  view.setUint16(0, 3, true);
  view.setUint16(2, ATTESTATION_KEY_TYPE_ECDSA_P256, true);
  view.setUint32(4, 0, true); // TEE type 0 = SGX
  view.setUint16(8, SIM_QE.isvSvn, true);
  view.setUint16(10, platform.pceSvn, true);
  out.set(Buffer.from(QE_VENDOR_ID_INTEL, "hex"), 12);
  // user_data: the first 16 bytes identify the QE instance (here: derived from the PPID); the last 4 mark the quote SIMULATED.
  out.set(sha256(platform.ppid).subarray(0, 16), 28);
  out.set(SIMULATED_QUOTE_MARK, 44);
  return out;
}

/** The quoting enclave's own report, binding the attestation key to the PCK-certified platform. */
function encodeQeReport(platform: SimPlatform): Uint8Array {
  const reportData = new Uint8Array(64);
  reportData.set(sha256(concat([platform.attestationKey.publicRaw, QE_AUTH_DATA])), 0);
  return encodeReportBody({
    cpuSvn: Uint8Array.from(platform.tcbComponents),
    miscSelect: 0,
    attributes: attributesOf(SIM_QE.flags, DEFAULT_XFRM),
    mrEnclave: SIM_QE.mrEnclave,
    mrSigner: SIM_QE.mrSigner,
    isvProdId: SIM_QE.isvProdId,
    isvSvn: SIM_QE.isvSvn,
    reportData,
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function le16(value: number): Uint8Array {
  return Uint8Array.of(value & 0xff, value >>> 8);
}

function le32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, true);
  return out;
}

/** Builds a simulated SGX ECDSA quote v3 for an enclave on `platform`. */
export function buildSgxQuoteV3(input: SgxReportInput, pki: SimPki, platform: SimPlatform): Uint8Array {
  if (!(input.reportData instanceof Uint8Array) || input.reportData.length !== 64) {
    throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", `reportData must be exactly 64 bytes, got ${input.reportData?.length}.`);
  }
  if (input.attributes !== undefined && input.attributes.length !== 16) throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", "attributes must be 16 bytes.");
  if (input.cpuSvn !== undefined && input.cpuSvn.length !== 16) throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", "cpuSvn must be 16 bytes.");
  const flags = SGX_FLAG_INIT | SGX_FLAG_MODE64BIT | (input.debug ? SGX_FLAG_DEBUG : 0n);
  const body = encodeReportBody({
    cpuSvn: input.cpuSvn ?? Uint8Array.from(platform.tcbComponents),
    miscSelect: input.miscSelect ?? 0,
    attributes: input.attributes ?? attributesOf(flags, DEFAULT_XFRM),
    mrEnclave: hex32("mrEnclave", input.mrEnclave),
    mrSigner: hex32("mrSigner", input.mrSigner),
    isvProdId: u16("isvProdId", input.isvProdId),
    isvSvn: u16("isvSvn", input.isvSvn),
    reportData: input.reportData,
  });
  const signed = concat([encodeHeader(platform), body]);
  const qeReport = encodeQeReport(platform);
  const chain = encoder.encode(`${pckChainPem(pki, platform)}\0`); // NUL-terminated, as Intel's QE emits it
  const signatureData = concat([
    signRaw(platform.attestationKey, signed),
    platform.attestationKey.publicRaw,
    qeReport,
    signRaw(platform.pckKey, qeReport),
    le16(QE_AUTH_DATA.length),
    QE_AUTH_DATA,
    le16(CERT_DATA_PCK_CHAIN),
    le32(chain.length),
    chain,
  ]);
  return concat([signed, le32(signatureData.length), signatureData]);
}
