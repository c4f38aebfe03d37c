/**
 * Attestation policy: which evidence a verifier accepts once it is known to
 * be authentic. Strict by default (productionPolicy): Intel's root only, the
 * measurements of Cloister's released enclave images only, no simulation, no
 * debug, TCB status UpToDate only, no advisories.
 *
 * A policy that pins no code (no measurement, no signer) accepts nothing
 * unless it says `anyCode: true`: genuine hardware running someone else's
 * code is no place to send data.
 *
 * A Policy is what the verifier evaluates; it comes from a policy manifest
 * (manifest/: policyForRole), the one document a network's trust lives in.
 * parsePolicy reads the policy-file shape from before the manifest (for
 * conversion, manifest/legacy.ts) and names the offending field of a bad
 * file, e.g. `policy.acceptedTcbStatuses[1]`.
 */
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { AttestationError } from "./dcap/errors.ts";
import { intelSgxRootCaDer } from "./dcap/intel-root.ts";
import { parseCert } from "./dcap/cert.ts";
import { isSimulatedCert } from "./dcap/simulated-marks.ts";
import { TCB_STATUSES } from "./dcap/collateral-format.ts";
import { releasedEnclaveMeasurements } from "./releases.ts";
import type { Claims, TcbStatus, TeeType } from "./types.ts";

export interface SignerRule {
  /** MRSIGNER, lowercase hex (32 bytes). */
  signer: string;
  productId?: number;
  minSvn?: number;
}

export interface Policy {
  /** Production roots, DER. */
  trustedRoots: Uint8Array[];
  /** Accept evidence chained to a simulated vendor root. */
  allowSimulation: boolean;
  /** Simulated vendor roots, DER; evidence chained to them is marked simulated. */
  simulatedRoots: Uint8Array[];
  /** TEE types accepted; absent = all. */
  teeTypes?: TeeType[];
  /** Accepted measurements (MRENCLAVE / MRTD / SNP MEASUREMENT), lowercase hex; absent = not pinned by measurement. */
  measurements?: string[];
  /** Accepted SGX signers; absent = not pinned by signer. When neither list names any code, nothing is accepted unless `anyCode`. */
  signers?: SignerRule[];
  /** Accept any code when no measurement or signer is pinned (explicit, for inspecting evidence; never the default). */
  anyCode?: boolean;
  acceptedTcbStatuses: TcbStatus[];
  acceptedAdvisoryIds: string[];
  allowDebug: boolean;
  /** Refuse collateral issued longer ago than this. */
  maxCollateralAgeSeconds?: number;
  /** Exact report_data the evidence must carry, lowercase hex (64 bytes). */
  expectedReportData?: string;
  /** AMD ARK to pin for SEV-SNP, PEM; absent = the SEV-SNP verifier's built-in ARKs. */
  snpArkPem?: string;
}

export interface PolicyContext {
  /** Evaluation time, unix seconds. */
  now?: number;
  /** report_data the caller expects (e.g. bound to its nonce), 64 bytes. */
  expectedReportData?: Uint8Array;
}

export const INTEL_ROOT_NAME = "intel-sgx-root-ca";
/** In a policy file's `measurements`: every measurement listed in releases/enclave-measurements.json. */
export const RELEASED_MEASUREMENTS_NAME = "cloister-released";

/** The strict default: Intel's root, Cloister's released enclave images only, nothing simulated, no debug, UpToDate only, no advisories. */
export function productionPolicy(): Policy {
  return {
    trustedRoots: [intelSgxRootCaDer()],
    allowSimulation: false,
    simulatedRoots: [],
    measurements: releasedEnclaveMeasurements(),
    acceptedTcbStatuses: ["UpToDate"],
    acceptedAdvisoryIds: [],
    allowDebug: false,
  };
}

const hexBytes = (n: number) =>
  z.string().transform((s, ctx) => {
    const t = s.trim().replace(/^0x/i, "").toLowerCase();
    if (t.length !== n * 2 || !/^[0-9a-f]*$/.test(t)) {
      ctx.addIssue({ code: "custom", message: `${JSON.stringify(s)} is not ${n} bytes of hex` });
      return z.NEVER;
    }
    return t;
  });

const certificate = z.string().transform((s, ctx): Uint8Array => {
  if (s === INTEL_ROOT_NAME) return intelSgxRootCaDer();
  const pem = s.match(/-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/);
  const der = Buffer.from(pem ? pem[1]!.replace(/\s+/g, "") : s.replace(/\s+/g, ""), "base64");
  try {
    new X509Certificate(der);
    return new Uint8Array(der);
  } catch {
    ctx.addIssue({ code: "custom", message: `is not "${INTEL_ROOT_NAME}", a PEM certificate or a base64 DER certificate` });
    return z.NEVER;
  }
});

/** A production root must not be a simulated one: simulated evidence is only ever accepted through simulatedRoots + allowSimulation. */
const productionRoot = certificate.refine((der) => {
  try {
    return !isSimulatedCert(parseCert(der, "root"));
  } catch {
    return true;
  }
}, { message: "is a SIMULATED vendor root (Cloister's simulated TEE proves nothing about hardware): list it in \"simulatedRoots\" and set \"allowSimulation\": true, for development only" });

const tcbStatus = z.enum(TCB_STATUSES as readonly TcbStatus[] as [TcbStatus, ...TcbStatus[]], {
  error: (issue) => `${JSON.stringify(issue.input)} is not a TCB status (one of ${TCB_STATUSES.join(", ")})`,
});

const teeType = z.enum(["SGX", "TDX", "SEV-SNP"], {
  error: (issue) => `${JSON.stringify(issue.input)} is not a TEE type (SGX, TDX or SEV-SNP)`,
});

/** Accepted measurements: hex (lowercased, 0x dropped) or "cloister-released", which expands to the released images' measurements. */
const measurementList = z.array(z.string().transform((s, ctx): string | string[] => {
  if (s === RELEASED_MEASUREMENTS_NAME) return releasedEnclaveMeasurements();
  const t = s.trim().replace(/^0x/i, "").toLowerCase();
  if (!/^([0-9a-f]{64}|[0-9a-f]{96})$/.test(t)) {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(s)} is not "${RELEASED_MEASUREMENTS_NAME}" or a 32-byte (MRENCLAVE) or 48-byte (MRTD, SNP) hex measurement` });
    return z.NEVER;
  }
  return t;
})).transform((list) => list.flat());

const signerRule = z.strictObject({
  signer: hexBytes(32),
  productId: z.number().int().min(0).max(0xffff).optional(),
  minSvn: z.number().int().min(0).max(0xffff).optional(),
});

/** The field validators a policy file and a manifest (manifest.ts) share, so both spell a field the same way. */
export const policyFields = { hexBytes, certificate, productionRoot, tcbStatus, teeType, measurementList, signerRule };

const policySchema = z.strictObject({
  $schema: z.string().optional(),
  trustedRoots: z.array(productionRoot).min(1).optional(),
  allowSimulation: z.boolean().default(false),
  simulatedRoots: z.array(certificate).default([]),
  teeTypes: z.array(teeType).min(1).optional(),
  measurements: measurementList.optional(),
  signers: z.array(signerRule).optional(),
  anyCode: z.boolean().default(false),
  acceptedTcbStatuses: z.array(tcbStatus).min(1).default(["UpToDate"]),
  acceptedAdvisoryIds: z.array(z.string().regex(/^[A-Z]+-SA-\d+$/, "is not an advisory ID like INTEL-SA-00615")).default([]),
  allowDebug: z.boolean().default(false),
  maxCollateralAgeSeconds: z.number().int().positive().optional(),
  expectedReportData: hexBytes(64).optional(),
  snpArkPem: z.string().includes("BEGIN CERTIFICATE", { message: "is not a PEM certificate" }).optional(),
}).refine((p) => !(p.anyCode && ((p.measurements?.length ?? 0) > 0 || (p.signers?.length ?? 0) > 0)), {
  path: ["anyCode"],
  message: "contradicts the measurements / signers the policy pins: remove anyCode to accept only the pinned code",
});

/** True when the policy names some code (a measurement or a signer rule) to accept. */
export function pinsCode(policy: Policy): boolean {
  return (policy.measurements?.length ?? 0) > 0 || (policy.signers?.length ?? 0) > 0;
}

/** The refusal of a policy that pins no code, with how to pin some. */
export const NO_CODE_PINNED =
  "no code pinned: the policy lists no enclave measurement or signer, and genuine hardware running any other code must not get data; " +
  "pin the code (policy \"measurements\" / \"signers\", or --measurement <hex> / --mrsigner <hex>), or accept any code explicitly (\"anyCode\": true, --any-code)";

function fieldPath(path: readonly PropertyKey[]): string {
  return "policy" + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}

/** Validates a policy object (as read from JSON); errors name the offending field. */
export function parsePolicy(json: unknown): Policy {
  const parsed = policySchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      if (i.code === "unrecognized_keys") return `${fieldPath(i.path)}: unknown field ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
      if (i.code === "invalid_type" && i.input === undefined) return `${fieldPath(i.path)}: is required`;
      return `${fieldPath(i.path)}: ${i.message}`;
    });
    throw new AttestationError("POLICY_INVALID", `invalid attestation policy: ${lines.join("; ")}`);
  }
  const { $schema: _schema, trustedRoots, ...rest } = parsed.data;
  return { ...rest, trustedRoots: trustedRoots ?? [intelSgxRootCaDer()] } as Policy;
}

/** Removes // and /* *\/ comments and trailing commas outside strings. */
export function stripJsonComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/,(\s*[}\]])/g, "$1");
}

function collateralIssueDate(claims: Claims): number | undefined {
  const c = claims.extra?.collateral as { tcbInfoIssueDate?: number; qeIdentityIssueDate?: number } | undefined;
  if (!c || c.tcbInfoIssueDate === undefined || c.qeIdentityIssueDate === undefined) return undefined;
  return Math.min(c.tcbInfoIssueDate, c.qeIdentityIssueDate);
}

/** The policy's reasons to refuse verified claims; empty when accepted. */
export function evaluatePolicy(claims: Claims, policy: Policy, ctx: PolicyContext = {}): string[] {
  const reasons: string[] = [];
  if (claims.simulated && !policy.allowSimulation) reasons.push("evidence is SIMULATED and the policy does not allow simulation (allowSimulation)");
  if (policy.teeTypes && !policy.teeTypes.includes(claims.teeType)) reasons.push(`TEE type ${claims.teeType} is not among the accepted ${policy.teeTypes.join(", ")}`);
  if (claims.debug && !policy.allowDebug) reasons.push("the enclave runs in debug mode, its memory is readable by the host (allowDebug is false)");
  if (claims.teeType !== "SEV-SNP") {
    if (!claims.tcbStatus) reasons.push("no TCB status was established");
    else if (!policy.acceptedTcbStatuses.includes(claims.tcbStatus)) {
      reasons.push(`TCB status ${claims.tcbStatus} is not accepted (accepted: ${policy.acceptedTcbStatuses.join(", ")})`);
    }
  }
  const advisories = claims.advisoryIds.filter((a) => !policy.acceptedAdvisoryIds.includes(a));
  if (advisories.length > 0) reasons.push(`advisories not accepted by the policy: ${advisories.join(", ")}`);
  if (!pinsCode(policy)) {
    if (!policy.anyCode) reasons.push(NO_CODE_PINNED);
  } else {
    const byMeasurement = policy.measurements?.includes(claims.measurement) ?? false;
    const bySigner = (policy.signers ?? []).some((s) =>
      claims.signer === s.signer &&
      (s.productId === undefined || claims.productId === s.productId) &&
      (s.minSvn === undefined || (claims.svn ?? -1) >= s.minSvn));
    if (!byMeasurement && !bySigner) {
      reasons.push(`measurement ${claims.measurement}${claims.signer ? ` (signer ${claims.signer}, product ${claims.productId}, SVN ${claims.svn})` : ""} is not allowed by the policy`);
    }
  }
  const expected = [policy.expectedReportData, ctx.expectedReportData && Buffer.from(ctx.expectedReportData).toString("hex")];
  for (const rd of expected) {
    if (rd !== undefined && rd !== claims.reportData) reasons.push(`report_data ${claims.reportData} differs from the expected ${rd} (stale nonce or different key)`);
  }
  if (policy.maxCollateralAgeSeconds !== undefined) {
    const issued = collateralIssueDate(claims);
    const now = ctx.now ?? Math.floor(Date.now() / 1000);
    if (issued !== undefined && now - issued > policy.maxCollateralAgeSeconds) {
      reasons.push(`collateral was issued ${now - issued} s ago, more than the policy's maxCollateralAgeSeconds ${policy.maxCollateralAgeSeconds}`);
    }
  }
  return reasons;
}
