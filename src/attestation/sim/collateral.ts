/**
 * Simulated DCAP collateral in the exact JSON shape of real Intel collateral
 * (DcapCollateral): a TCB info (id "SGX", version 3) and a QE identity (id
 * "QE", version 2), each signed as its exact JSON text by the simulated TCB
 * signing key, plus freshly issued CRLs and the PEM issuer chains.
 */
import type { DcapCollateral } from "../types.ts";
import { signRaw } from "./keys.ts";
import {
  issuePckCrl,
  issueRootCaCrl,
  pckCrlIssuerChainPem,
  SIM_CURRENT_PCE_SVN,
  SIM_CURRENT_TCB,
  SIM_FMSPC,
  SIM_PCE_ID,
  tcbIssuerChainPem,
  type SimPki,
} from "./pki.ts";
import { SIM_QE } from "./quote.ts";

/** The advisory attached to the simulated OutOfDate levels. */
export const SIM_ADVISORY_ID = "CLOISTER-SIM-SA-00001";
/** The TCB one step behind the current one; matches as OutOfDate. */
export const SIM_OUTDATED_TCB: readonly number[] = SIM_CURRENT_TCB.map((svn, i) => (i < 2 ? Math.max(0, svn - 1) : svn));
export const SIM_OUTDATED_PCE_SVN = SIM_CURRENT_PCE_SVN - 2;

const DAY_MS = 86_400_000;
const encoder = new TextEncoder();

export interface SimCollateralOptions {
  /** Evaluation time the collateral is issued around (default: now). */
  now?: Date;
  /** Days until nextUpdate (default 30). */
  validityDays?: number;
}

/** Intel's timestamp form: ISO 8601 UTC without milliseconds. */
function intelDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function sgxLevel(components: readonly number[], pcesvn: number, tcbDate: string, tcbStatus: string, advisoryIDs?: string[]) {
  return {
    tcb: { sgxtcbcomponents: components.map((svn) => ({ svn })), pcesvn },
    tcbDate,
    tcbStatus,
    ...(advisoryIDs ? { advisoryIDs } : {}),
  };
}

function signedJson(pki: SimPki, value: unknown): { text: string; signature: string } {
  const text = JSON.stringify(value);
  return { text, signature: Buffer.from(signRaw(pki.tcbSigning.key, encoder.encode(text))).toString("hex") };
}

/**
 * Collateral valid from one hour before `now` until `validityDays` after it.
 * The PCK CRL lists every certificate revoked with revokePckCertificate.
 */
export async function buildSimCollateral(pki: SimPki, options: SimCollateralOptions = {}): Promise<DcapCollateral> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000;
  const issued = new Date(now - 3_600_000);
  const nextUpdate = new Date(now + (options.validityDays ?? 30) * DAY_MS);
  const tcbInfo = signedJson(pki, {
    id: "SGX",
    version: 3,
    issueDate: intelDate(issued),
    nextUpdate: intelDate(nextUpdate),
    fmspc: SIM_FMSPC,
    pceId: SIM_PCE_ID,
    tcbType: 0,
    tcbEvaluationDataNumber: 1,
    tcbLevels: [
      sgxLevel(SIM_CURRENT_TCB, SIM_CURRENT_PCE_SVN, "2024-01-01T00:00:00Z", "UpToDate"),
      sgxLevel(SIM_OUTDATED_TCB, SIM_OUTDATED_PCE_SVN, "2023-01-01T00:00:00Z", "OutOfDate", [SIM_ADVISORY_ID]),
    ],
  });
  const qeIdentity = signedJson(pki, {
    id: "QE",
    version: 2,
    issueDate: intelDate(issued),
    nextUpdate: intelDate(nextUpdate),
    tcbEvaluationDataNumber: 1,
    miscselect: "00000000",
    miscselectMask: "FFFFFFFF",
    attributes: "11000000000000000000000000000000",
    attributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
    mrsigner: Buffer.from(SIM_QE.mrSigner).toString("hex").toUpperCase(),
    isvprodid: SIM_QE.isvProdId,
    tcbLevels: [
      { tcb: { isvsvn: SIM_QE.isvSvn }, tcbDate: "2024-01-01T00:00:00Z", tcbStatus: "UpToDate" },
      { tcb: { isvsvn: 1 }, tcbDate: "2023-01-01T00:00:00Z", tcbStatus: "OutOfDate", advisoryIDs: [SIM_ADVISORY_ID] },
    ],
  });
  const window = { thisUpdate: issued, nextUpdate };
  const tcbChain = tcbIssuerChainPem(pki);
  return {
    tcb_info: tcbInfo.text,
    tcb_info_signature: tcbInfo.signature,
    tcb_info_issuer_chain: tcbChain,
    qe_identity: qeIdentity.text,
    qe_identity_signature: qeIdentity.signature,
    qe_identity_issuer_chain: tcbChain,
    pck_crl: Buffer.from(await issuePckCrl(pki, window)).toString("hex"),
    pck_crl_issuer_chain: pckCrlIssuerChainPem(pki),
    root_ca_crl: Buffer.from(await issueRootCaCrl(pki, window)).toString("hex"),
  };
}
