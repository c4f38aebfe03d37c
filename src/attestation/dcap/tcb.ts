/**
 * TCB evaluation as Intel's reference Quote Verification Library does it:
 * platform TCB level, TDX module identity and TCB, QE identity and TCB, and
 * the convergence of the three statuses into one.
 */
import { AttestationError } from "./errors.ts";
import { hex } from "./bytes.ts";
import type { TcbStatus } from "../types.ts";
import type { EnclaveIdentity, ModuleTcbLevel, TcbInfo, TcbLevel } from "./collateral-format.ts";
import type { SgxReport, TdReport } from "./quote.ts";

export interface PlatformTcb {
  tcbComponents: number[];
  pceSvn: number;
}

/**
 * The first TCB level (Intel lists them newest first) that the platform
 * meets: all 16 SGX components and the PCESVN at or above the level's and,
 * for TDX, the TEE_TCB_SVN at or above the level's TDX components. When
 * TEE_TCB_SVN[1] > 0 the first two bytes identify the TDX module (version and
 * its SVN, judged by `tdxModuleIdentities`), so the comparison starts at byte 2.
 */
export function matchTcbLevel(tcbInfo: TcbInfo, platform: PlatformTcb, teeTcbSvn?: Uint8Array): TcbLevel {
  for (const level of tcbInfo.tcbLevels) {
    if (!level.sgxComponents.every((svn, i) => (platform.tcbComponents[i] ?? 0) >= svn)) continue;
    if (platform.pceSvn < level.pceSvn) continue;
    if (teeTcbSvn) {
      const tdx = level.tdxComponents;
      if (!tdx) continue;
      const start = teeTcbSvn[1]! > 0 ? 2 : 0;
      let meets = true;
      for (let i = start; i < 16; i++) if (teeTcbSvn[i]! < tdx[i]!) meets = false;
      if (!meets) continue;
    }
    return level;
  }
  throw new AttestationError(
    "TCB_LEVEL_UNMATCHED",
    `no TCB level of tcb_info (FMSPC ${tcbInfo.fmspc}) is met by this platform (SGX TCB components ${platform.tcbComponents.join(",")}, PCESVN ${platform.pceSvn}` +
      (teeTcbSvn ? `, TEE_TCB_SVN ${hex(teeTcbSvn)}` : "") +
      "): Intel does not support this TCB; update the platform's microcode/firmware",
  );
}

function maskedEqual(actual: Uint8Array, expectedHex: string, maskHex: string): boolean {
  const expected = Buffer.from(expectedHex, "hex");
  const mask = Buffer.from(maskHex, "hex");
  if (expected.length !== actual.length || mask.length !== actual.length) return false;
  for (let i = 0; i < actual.length; i++) if ((actual[i]! & mask[i]!) !== (expected[i]! & mask[i]!)) return false;
  return true;
}

export interface TdxModuleResult {
  /** Set when the module identity has TCB levels (TEE_TCB_SVN[1] > 0). */
  tcbStatus?: TcbStatus;
  advisoryIds: string[];
  id?: string;
}

/** Checks the TDX module's signer and attributes and judges its SVN. */
export function evaluateTdxModule(tcbInfo: TcbInfo, td: TdReport): TdxModuleResult {
  const version = td.teeTcbSvn[1]!;
  if (version === 0) {
    const m = tcbInfo.tdxModule;
    if (!m) throw new AttestationError("COLLATERAL_MALFORMED", "tcb_info for TDX has no tdxModule");
    checkModuleIdentity(m, td, "tdxModule");
    return { advisoryIds: [] };
  }
  const id = `TDX_${version.toString(16).toUpperCase().padStart(2, "0")}`;
  const identity = tcbInfo.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
  if (!identity) {
    throw new AttestationError("TCB_LEVEL_UNMATCHED", `tcb_info has no TDX module identity ${id} (TEE_TCB_SVN[1] = ${version})`);
  }
  checkModuleIdentity(identity, td, id);
  const isvSvn = td.teeTcbSvn[0]!;
  const level = identity.tcbLevels.find((l) => l.isvSvn <= isvSvn);
  if (!level) throw new AttestationError("TCB_LEVEL_UNMATCHED", `TDX module ${id} SVN ${isvSvn} is below every TCB level Intel lists for it`);
  return { tcbStatus: level.tcbStatus, advisoryIds: level.advisoryIds, id };
}

function checkModuleIdentity(m: { mrSigner: string; attributes: string; attributesMask: string }, td: TdReport, what: string): void {
  if (hex(td.mrSignerSeam) !== m.mrSigner) {
    throw new AttestationError("TCB_LEVEL_UNMATCHED", `MRSIGNERSEAM ${hex(td.mrSignerSeam)} differs from ${what}.mrsigner ${m.mrSigner}`);
  }
  if (!maskedEqual(td.seamAttributes, m.attributes, m.attributesMask)) {
    throw new AttestationError("TCB_LEVEL_UNMATCHED", `SEAM attributes ${hex(td.seamAttributes)} do not match ${what}.attributes under its mask`);
  }
}

/** Checks the QE report against the QE identity and returns the QE's TCB level. */
export function evaluateQeIdentity(identity: EnclaveIdentity, qe: SgxReport): ModuleTcbLevel {
  if (hex(qe.mrSigner) !== identity.mrSigner) {
    throw new AttestationError("QE_IDENTITY_MISMATCH", `QE MRSIGNER ${hex(qe.mrSigner)} differs from qe_identity.mrsigner ${identity.mrSigner}`);
  }
  if (qe.isvProdId !== identity.isvProdId) {
    throw new AttestationError("QE_IDENTITY_MISMATCH", `QE ISVPRODID ${qe.isvProdId} differs from qe_identity.isvprodid ${identity.isvProdId}`);
  }
  if ((qe.miscSelect & identity.miscSelectMask) >>> 0 !== (identity.miscSelect & identity.miscSelectMask) >>> 0) {
    throw new AttestationError("QE_IDENTITY_MISMATCH", "QE MISCSELECT does not match qe_identity.miscselect under its mask");
  }
  if (!maskedEqual(qe.attributes, identity.attributes, identity.attributesMask)) {
    throw new AttestationError("QE_IDENTITY_MISMATCH", `QE attributes ${hex(qe.attributes)} do not match qe_identity.attributes under its mask`);
  }
  // As in Intel's QVL, an ISVSVN below every listed level counts as revoked.
  return identity.tcbLevels.find((l) => l.isvSvn <= qe.isvSvn) ?? { isvSvn: qe.isvSvn, tcbDate: "", tcbStatus: "Revoked", advisoryIds: [] };
}

/** Folds a component's status (TDX module or QE) into the platform status, as Intel's QVL does. */
export function convergeStatus(platform: TcbStatus, component: TcbStatus | undefined): TcbStatus {
  if (component === "Revoked" || platform === "Revoked") return "Revoked";
  if (component === "OutOfDate" || component === "OutOfDateConfigurationNeeded") {
    if (platform === "UpToDate" || platform === "SWHardeningNeeded") return "OutOfDate";
    if (platform === "ConfigurationNeeded" || platform === "ConfigurationAndSWHardeningNeeded") return "OutOfDateConfigurationNeeded";
  }
  return platform;
}
