/**
 * Intel's signed collateral documents (PCS v4): TCB info (v2 and v3) and
 * enclave identity (v2). Validated with zod after the signature over the
 * exact text has been checked elsewhere; unknown fields are kept out.
 */
import { z } from "zod";
import { AttestationError } from "./errors.ts";
import type { TcbStatus } from "../types.ts";

export const TCB_STATUSES = [
  "UpToDate",
  "SWHardeningNeeded",
  "ConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "OutOfDate",
  "OutOfDateConfigurationNeeded",
  "Revoked",
] as const satisfies readonly TcbStatus[];

const hexOf = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `expected ${bytes} bytes of hex`);
const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "expected an ISO 8601 date");
const svn = z.number().int().min(0).max(0xffff);
const status = z.enum(TCB_STATUSES);
const componentList = z.array(z.object({ svn: svn })).length(16);

const tcbLevelV3 = z.object({
  tcb: z.object({ sgxtcbcomponents: componentList, pcesvn: svn, tdxtcbcomponents: componentList.optional() }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: z.array(z.string()).optional(),
});

const tcbV2Keys = Object.fromEntries(
  Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, "0")}svn`, svn]),
) as Record<string, typeof svn>;

const tcbLevelV2 = z.object({
  tcb: z.object({ ...tcbV2Keys, pcesvn: svn }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: z.array(z.string()).optional(),
});

const moduleTcbLevel = z.object({
  tcb: z.object({ isvsvn: svn }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: z.array(z.string()).optional(),
});

const tdxModule = z.object({ mrsigner: hexOf(48), attributes: hexOf(8), attributesMask: hexOf(8) });

const tcbInfoSchema = z.object({
  id: z.enum(["SGX", "TDX"]).optional(),
  version: z.union([z.literal(2), z.literal(3)]),
  issueDate: isoDate,
  nextUpdate: isoDate,
  fmspc: hexOf(6),
  pceId: hexOf(2),
  tcbType: z.number().int(),
  tcbEvaluationDataNumber: z.number().int(),
  tdxModule: tdxModule.optional(),
  tdxModuleIdentities: z.array(tdxModule.extend({ id: z.string(), tcbLevels: z.array(moduleTcbLevel) })).optional(),
  tcbLevels: z.array(z.unknown()).min(1),
});

const enclaveIdentitySchema = z.object({
  id: z.enum(["QE", "QVE", "TD_QE"]),
  version: z.literal(2),
  issueDate: isoDate,
  nextUpdate: isoDate,
  tcbEvaluationDataNumber: z.number().int(),
  miscselect: hexOf(4),
  miscselectMask: hexOf(4),
  attributes: hexOf(16),
  attributesMask: hexOf(16),
  mrsigner: hexOf(32),
  isvprodid: svn,
  tcbLevels: z.array(moduleTcbLevel).min(1),
});

export interface TcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents?: number[];
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
}

export interface ModuleTcbLevel {
  isvSvn: number;
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: string;
  attributes: string;
  attributesMask: string;
  tcbLevels: ModuleTcbLevel[];
}

export interface TcbInfo {
  id: "SGX" | "TDX";
  version: number;
  issueDate: number;
  nextUpdate: number;
  fmspc: string;
  pceId: string;
  tcbEvaluationDataNumber: number;
  tdxModule?: Omit<TdxModuleIdentity, "id" | "tcbLevels">;
  tdxModuleIdentities: TdxModuleIdentity[];
  tcbLevels: TcbLevel[];
}

export interface EnclaveIdentity {
  id: "QE" | "QVE" | "TD_QE";
  issueDate: number;
  nextUpdate: number;
  tcbEvaluationDataNumber: number;
  miscSelect: number;
  miscSelectMask: number;
  attributes: string;
  attributesMask: string;
  mrSigner: string;
  isvProdId: number;
  tcbLevels: ModuleTcbLevel[];
}

function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AttestationError("COLLATERAL_MALFORMED", `${what} is not valid JSON (${(e as Error).message})`);
  }
}

function moduleLevels(levels: z.infer<typeof moduleTcbLevel>[]): ModuleTcbLevel[] {
  return levels.map((l) => ({ isvSvn: l.tcb.isvsvn, tcbDate: l.tcbDate, tcbStatus: l.tcbStatus, advisoryIds: l.advisoryIDs ?? [] }));
}

export function parseTcbInfo(text: string): TcbInfo {
  const parsed = tcbInfoSchema.safeParse(parseJson(text, "tcb_info"));
  if (!parsed.success) throw new AttestationError("COLLATERAL_MALFORMED", `tcb_info is malformed: ${describeIssues(parsed.error)}`);
  const t = parsed.data;
  const levelSchema = t.version === 2 ? tcbLevelV2 : tcbLevelV3;
  const tcbLevels = t.tcbLevels.map((raw, n): TcbLevel => {
    const l = levelSchema.safeParse(raw);
    if (!l.success) throw new AttestationError("COLLATERAL_MALFORMED", `tcb_info.tcbLevels[${n}] is malformed: ${describeIssues(l.error)}`);
    const level = l.data;
    const tcb = level.tcb as Record<string, unknown>;
    const sgxComponents = t.version === 2
      ? Array.from({ length: 16 }, (_, i) => tcb[`sgxtcbcomp${String(i + 1).padStart(2, "0")}svn`] as number)
      : (tcb.sgxtcbcomponents as { svn: number }[]).map((c) => c.svn);
    const tdx = tcb.tdxtcbcomponents as { svn: number }[] | undefined;
    return {
      sgxComponents,
      pceSvn: tcb.pcesvn as number,
      tdxComponents: tdx?.map((c) => c.svn),
      tcbDate: level.tcbDate,
      tcbStatus: level.tcbStatus,
      advisoryIds: level.advisoryIDs ?? [],
    };
  });
  const module = t.tdxModule;
  return {
    id: t.id ?? "SGX",
    version: t.version,
    issueDate: seconds(t.issueDate),
    nextUpdate: seconds(t.nextUpdate),
    fmspc: t.fmspc.toLowerCase(),
    pceId: t.pceId.toLowerCase(),
    tcbEvaluationDataNumber: t.tcbEvaluationDataNumber,
    tdxModule: module && { mrSigner: module.mrsigner.toLowerCase(), attributes: module.attributes.toLowerCase(), attributesMask: module.attributesMask.toLowerCase() },
    tdxModuleIdentities: (t.tdxModuleIdentities ?? []).map((m) => ({
      id: m.id,
      mrSigner: m.mrsigner.toLowerCase(),
      attributes: m.attributes.toLowerCase(),
      attributesMask: m.attributesMask.toLowerCase(),
      tcbLevels: moduleLevels(m.tcbLevels),
    })),
    tcbLevels,
  };
}

export function parseEnclaveIdentity(text: string): EnclaveIdentity {
  const parsed = enclaveIdentitySchema.safeParse(parseJson(text, "qe_identity"));
  if (!parsed.success) throw new AttestationError("COLLATERAL_MALFORMED", `qe_identity is malformed: ${describeIssues(parsed.error)}`);
  const e = parsed.data;
  return {
    id: e.id,
    issueDate: seconds(e.issueDate),
    nextUpdate: seconds(e.nextUpdate),
    tcbEvaluationDataNumber: e.tcbEvaluationDataNumber,
    miscSelect: Buffer.from(e.miscselect, "hex").readUInt32BE(0),
    miscSelectMask: Buffer.from(e.miscselectMask, "hex").readUInt32BE(0),
    attributes: e.attributes.toLowerCase(),
    attributesMask: e.attributesMask.toLowerCase(),
    mrSigner: e.mrsigner.toLowerCase(),
    isvProdId: e.isvprodid,
    tcbLevels: moduleLevels(e.tcbLevels),
  };
}
