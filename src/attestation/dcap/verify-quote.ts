/**
 * The DCAP quote verifier: every check Intel's QVL makes for an ECDSA quote,
 * anchored at caller-supplied roots (Intel's, or a simulated vendor's).
 *
 * Security assumptions: the trusted roots are authentic; `now` is the
 * verifier's honest clock. Collateral is untrusted input: every piece of it is
 * checked against the same root the PCK chain anchors at.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { AttestationError } from "./errors.ts";
import { bytesEqual, fromHex, hex } from "./bytes.ts";
import { isSimulatedCert, isSimulatedQuoteHeader } from "./simulated-marks.ts";
import { checkValidity, parseCert, parsePemChain, verifyChain, type Cert, type TrustAnchor } from "./cert.ts";
import { checkCrl, checkNotRevoked, parseCrl, type Crl } from "./crl.ts";
import { parsePckExtensions, type PckExtensions } from "./pck-extensions.ts";
import { embeddedPckChain, parseQuote, type ParsedQuote } from "./quote.ts";
import { parseEnclaveIdentity, parseTcbInfo } from "./collateral-format.ts";
import { convergeStatus, evaluateQeIdentity, evaluateTdxModule, matchTcbLevel } from "./tcb.ts";
import type { Claims, DcapCollateral } from "../types.ts";

export interface DcapVerifyOptions {
  /** Evaluation time: a Date or unix seconds. Defaults to the current time. */
  now?: Date | number;
  /** DER certificates of the production roots (e.g. Intel SGX Root CA). */
  trustedRoots: Uint8Array[];
  /** DER certificates of simulated vendor roots; evidence chained to them gets `simulated: true`. */
  simulatedRoots?: Uint8Array[];
}

export type PckCa = "processor" | "platform";

export function toUnixSeconds(now: Date | number | undefined): number {
  if (now === undefined) return Math.floor(Date.now() / 1000);
  if (now instanceof Date) return Math.floor(now.getTime() / 1000);
  if (!Number.isFinite(now)) throw new AttestationError("COLLATERAL_MALFORMED", "`now` must be a finite number of unix seconds");
  return Math.floor(now);
}

/** Which Intel PCK CA issued a certificate, by the issuer's common name. */
export function pckCaOf(pck: Cert): PckCa | undefined {
  if (/processor/i.test(pck.issuerCN)) return "processor";
  if (/platform/i.test(pck.issuerCN)) return "platform";
  return undefined;
}

function ecdsaP256Key(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({
      key: { kty: "EC", crv: "P-256", x: Buffer.from(raw.subarray(0, 32)).toString("base64url"), y: Buffer.from(raw.subarray(32, 64)).toString("base64url") },
      format: "jwk",
    });
  } catch {
    throw new AttestationError("QUOTE_SIGNATURE_INVALID", "the quote's attestation key is not a valid P-256 point");
  }
}

function verifyRaw(data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  try {
    return cryptoVerify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

function requireString(collateral: DcapCollateral, field: keyof DcapCollateral): string {
  const v = collateral[field];
  if (typeof v !== "string" || v.length === 0) {
    throw new AttestationError("COLLATERAL_MISSING", `collateral.${field} is missing; fetch collateral from a PCCS or pass a collateral file`);
  }
  return v;
}

function checkWindow(issueDate: number, nextUpdate: number, now: number, what: string): void {
  if (now < issueDate) {
    throw new AttestationError("COLLATERAL_NOT_YET_VALID", `${what} is not valid before its issueDate ${new Date(issueDate * 1000).toISOString()}`);
  }
  if (now > nextUpdate) {
    throw new AttestationError("COLLATERAL_EXPIRED", `${what} expired at its nextUpdate ${new Date(nextUpdate * 1000).toISOString()}; fetch fresh collateral`);
  }
}

/** Verifies a signed collateral document (tcb_info or qe_identity) and its issuer chain. */
function verifySignedDocument(
  collateral: DcapCollateral,
  field: "tcb_info" | "qe_identity",
  anchor: TrustAnchor,
  rootCrl: Crl,
  now: number,
): string {
  const text = requireString(collateral, field);
  const signature = fromHex(requireString(collateral, `${field}_signature`), `collateral.${field}_signature`);
  const chain = parsePemChain(requireString(collateral, `${field}_issuer_chain`), `collateral.${field}_issuer_chain`);
  const { path } = verifyChain(chain, [anchor], now, `${field} issuer chain`);
  for (const c of path) checkNotRevoked(c, rootCrl, `${field} issuer chain`);
  if (signature.length !== 64 || !verifyRaw(new TextEncoder().encode(text), path[0]!.x509.publicKey, signature)) {
    throw new AttestationError("COLLATERAL_SIGNATURE_INVALID", `${field} signature does not verify with "${path[0]!.subjectCN}": the document was altered or the signature belongs to another document`);
  }
  return text;
}

/** Parses the quote's PCK chain (embedded, or from the collateral). */
function pckChainOf(q: ParsedQuote, collateral: DcapCollateral | undefined): Cert[] {
  const pem = embeddedPckChain(q) ?? collateral?.pck_certificate_chain;
  if (!pem) {
    throw new AttestationError("COLLATERAL_MISSING", `the quote carries certification data type ${q.certificationDataType}, not a PCK chain; pass collateral.pck_certificate_chain`);
  }
  return parsePemChain(pem, "PCK certificate chain");
}

/** The claims that can be read from the quote alone (nothing verified). */
export function quoteClaims(q: ParsedQuote, pck?: PckExtensions, pckCa?: PckCa): Claims {
  const extra: Record<string, unknown> = { qeSvn: q.qeReport.isvSvn, pckCa };
  const base = {
    quoteVersion: q.header.version,
    simulated: false,
    advisoryIds: [] as string[],
    fmspc: pck ? hex(pck.fmspc) : undefined,
    extra,
  };
  if (pck) {
    extra.pceId = hex(pck.pceId);
    extra.ppid = hex(pck.ppid);
  }
  if (q.body.kind === "sgx") {
    const r = q.body.report;
    extra.attributes = hex(r.attributes);
    extra.miscSelect = r.miscSelect;
    extra.cpuSvn = hex(r.cpuSvn);
    return {
      ...base,
      teeType: "SGX",
      measurement: hex(r.mrEnclave),
      signer: hex(r.mrSigner),
      productId: r.isvProdId,
      svn: r.isvSvn,
      reportData: hex(r.reportData),
      debug: (r.attributes[0]! & 0x02) !== 0,
    };
  }
  const td = q.body.report;
  Object.assign(extra, {
    tdReportType: td.type,
    teeTcbSvn: hex(td.teeTcbSvn),
    mrSeam: hex(td.mrSeam),
    mrSignerSeam: hex(td.mrSignerSeam),
    tdAttributes: hex(td.tdAttributes),
    xfam: hex(td.xfam),
    mrConfigId: hex(td.mrConfigId),
    mrOwner: hex(td.mrOwner),
    mrOwnerConfig: hex(td.mrOwnerConfig),
    rtmrs: td.rtmrs.map(hex),
    ...(td.mrServiceTd ? { mrServiceTd: hex(td.mrServiceTd), teeTcbSvn2: hex(td.teeTcbSvn2!) } : {}),
  });
  return { ...base, teeType: "TDX", measurement: hex(td.mrTd), reportData: hex(td.reportData), debug: (td.tdAttributes[0]! & 0x01) !== 0 };
}

/** Best-effort claims for display when verification fails: never throws. */
export function describeQuote(quote: Uint8Array, collateral?: DcapCollateral): Claims | undefined {
  let q: ParsedQuote;
  try {
    q = parseQuote(quote);
  } catch {
    return undefined;
  }
  try {
    const leaf = pckChainOf(q, collateral)[0]!;
    return quoteClaims(q, parsePckExtensions(leaf), pckCaOf(leaf));
  } catch {
    return quoteClaims(q);
  }
}

function anchorsOf(options: DcapVerifyOptions): TrustAnchor[] {
  const parse = (der: Uint8Array, simulated: boolean, n: number): TrustAnchor => ({
    cert: parseCert(der, `${simulated ? "simulated" : "trusted"} root ${n}`),
    simulated,
  });
  const anchors = [
    ...(options.trustedRoots ?? []).map((d, n) => parse(d, false, n)),
    ...(options.simulatedRoots ?? []).map((d, n) => parse(d, true, n)),
  ];
  if (anchors.length === 0) throw new AttestationError("UNTRUSTED_ROOT", "no trusted root given: pass Intel's SGX Root CA (or a simulated root)");
  return anchors;
}

/** Verifies a DCAP quote with its collateral; returns the verified claims or throws AttestationError. */
export function verifyDcapQuoteSync(quote: Uint8Array, collateral: DcapCollateral | undefined, options: DcapVerifyOptions): Claims {
  const now = toUnixSeconds(options.now);
  const q = parseQuote(quote);
  if (!collateral || typeof collateral !== "object") {
    throw new AttestationError("COLLATERAL_MISSING", "no collateral given: fetch it from a PCCS (fetchCollateral) or load a collateral file");
  }
  const anchors = anchorsOf(options);

  // 1. PCK chain to a trusted root, and the root CA's CRL.
  const pckChain = pckChainOf(q, collateral);
  const { anchor, path } = verifyChain(pckChain, anchors, now, "PCK certificate chain");
  if (path.length < 2) throw new AttestationError("CERT_CHAIN_INVALID", "PCK certificate chain must hold the PCK certificate and its CA");
  const [pck, pckCaCert] = [path[0]!, path[1]!];
  const rootCrl = parseCrl(fromHex(requireString(collateral, "root_ca_crl"), "collateral.root_ca_crl"), "root CA CRL");
  checkCrl(rootCrl, anchor.cert, now, "root CA CRL");
  for (const c of path.slice(1)) checkNotRevoked(c, rootCrl, "PCK certificate chain");

  // 2. The CRL of the CA that issued this PCK certificate (Processor or Platform).
  const pckCrlChain = parsePemChain(requireString(collateral, "pck_crl_issuer_chain"), "collateral.pck_crl_issuer_chain");
  verifyChain(pckCrlChain, [anchor], now, "PCK CRL issuer chain");
  const pckCrl = parseCrl(fromHex(requireString(collateral, "pck_crl"), "collateral.pck_crl"), "PCK CRL");
  checkCrl(pckCrl, pckCaCert, now, `PCK CRL (must be the CRL of "${pckCaCert.subjectCN}")`);
  checkNotRevoked(pck, pckCrl, "PCK certificate");
  const ext = parsePckExtensions(pck);

  // 3. Signed collateral, each under the same root.
  const tcbInfo = parseTcbInfo(verifySignedDocument(collateral, "tcb_info", anchor, rootCrl, now));
  const qeIdentity = parseEnclaveIdentity(verifySignedDocument(collateral, "qe_identity", anchor, rootCrl, now));
  checkWindow(tcbInfo.issueDate, tcbInfo.nextUpdate, now, "tcb_info");
  checkWindow(qeIdentity.issueDate, qeIdentity.nextUpdate, now, "qe_identity");
  checkValidity(pck, now, "PCK certificate");

  // 4. QE report signed by the PCK key, binding the attestation key; quote signed by the attestation key.
  if (!verifyRaw(q.qeReportBytes, pck.x509.publicKey, q.qeReportSignature)) {
    throw new AttestationError("QE_REPORT_SIGNATURE_INVALID", "QE report signature does not verify with the PCK certificate's key");
  }
  const binding = createHash("sha256").update(q.attestationKey).update(q.qeAuthData).digest();
  const rd = q.qeReport.reportData;
  if (!bytesEqual(rd.subarray(0, 32), binding) || rd.subarray(32).some((b) => b !== 0)) {
    throw new AttestationError("ATTESTATION_KEY_BINDING_INVALID", "QE report_data is not SHA-256(attestation key || QE auth data) followed by zeros: the attestation key is not the QE's");
  }
  if (!verifyRaw(q.signedBytes, ecdsaP256Key(q.attestationKey), q.signature)) {
    throw new AttestationError("QUOTE_SIGNATURE_INVALID", "quote signature does not verify with the attestation key: the quote header or body was altered");
  }

  // 5. Collateral must describe this platform and this kind of quote.
  const isTdx = q.body.kind === "td";
  if (tcbInfo.id !== (isTdx ? "TDX" : "SGX")) throw new AttestationError("COLLATERAL_MISMATCH", `tcb_info is for ${tcbInfo.id} but the quote is ${isTdx ? "TDX" : "SGX"}`);
  if (isTdx && tcbInfo.version < 3) throw new AttestationError("COLLATERAL_MISMATCH", "TDX quotes need tcb_info version 3");
  if (tcbInfo.fmspc !== hex(ext.fmspc)) throw new AttestationError("COLLATERAL_MISMATCH", `tcb_info is for FMSPC ${tcbInfo.fmspc}, the PCK certificate has ${hex(ext.fmspc)}`);
  if (tcbInfo.pceId !== hex(ext.pceId)) throw new AttestationError("COLLATERAL_MISMATCH", `tcb_info is for PCE ID ${tcbInfo.pceId}, the PCK certificate has ${hex(ext.pceId)}`);
  const expectedQeId = isTdx ? "TD_QE" : "QE";
  if (qeIdentity.id !== expectedQeId) throw new AttestationError("COLLATERAL_MISMATCH", `qe_identity is for ${qeIdentity.id}, this quote needs ${expectedQeId}`);

  // 6. TCB: QE, platform, TDX module; merged as Intel's QVL does.
  const qeLevel = evaluateQeIdentity(qeIdentity, q.qeReport);
  const td = q.body.kind === "td" ? q.body.report : undefined;
  const level = matchTcbLevel(tcbInfo, ext, td?.teeTcbSvn);
  const module = td ? evaluateTdxModule(tcbInfo, td) : undefined;
  const status = convergeStatus(convergeStatus(level.tcbStatus, module?.tcbStatus), qeLevel.tcbStatus);
  const advisoryIds = [...new Set([...level.advisoryIds, ...(module?.advisoryIds ?? []), ...qeLevel.advisoryIds])];

  const claims = quoteClaims(q, ext, pckCaOf(pck));
  // Simulated is what the evidence says it is, whichever root list the simulated root was put in.
  claims.simulated = anchor.simulated || [anchor.cert, ...path].some(isSimulatedCert) || isSimulatedQuoteHeader(q.header.userData);
  claims.tcbStatus = status;
  claims.advisoryIds = advisoryIds;
  Object.assign(claims.extra!, {
    platformTcbStatus: level.tcbStatus,
    tcbDate: level.tcbDate,
    qeTcbStatus: qeLevel.tcbStatus,
    ...(module?.tcbStatus ? { tdxModuleId: module.id, tdxModuleTcbStatus: module.tcbStatus } : {}),
    collateral: {
      tcbInfoIssueDate: tcbInfo.issueDate,
      qeIdentityIssueDate: qeIdentity.issueDate,
      tcbEvaluationDataNumber: tcbInfo.tcbEvaluationDataNumber,
      nextUpdate: Math.min(tcbInfo.nextUpdate, qeIdentity.nextUpdate, pckCrl.nextUpdate!, rootCrl.nextUpdate!),
    },
  });
  return claims;
}

/** Async form of verifyDcapQuoteSync, the shape every verifier in the attestation layer shares. */
export async function verifyDcapQuote(quote: Uint8Array, collateral: DcapCollateral | undefined, options: DcapVerifyOptions): Promise<Claims> {
  return verifyDcapQuoteSync(quote, collateral, options);
}
