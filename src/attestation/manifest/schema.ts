/**
 * The policy manifest: one document that says which enclaves a Cloister
 * network trusts and under what terms. Shaped after MarbleRun's manifest,
 * where named `Packages` describe enclave code identities and `Marbles`
 * (roles) refer to them: here `packages` name code (measurements, SGX
 * signers), `roles` say which packages may act as which kind of enclave
 * (`task`, later `vault`, ...), and beside them sit the evidence policy
 * every role shares (`attestation`), the `limits` work runs under and the
 * `registration` lifetime.
 *
 * parseManifest validates and normalizes: defaults filled, hex lowercased,
 * certificates as base64 DER, "cloister-released" expanded to the released
 * measurements. The result is plain JSON, so its digest (digest.ts) is the
 * digest of exactly what consumers enforce. docs/attestation.md describes
 * every field.
 */
import { z } from "zod";
import { defaultTaskLimits, maxInlineInputBytes, maxTaskTimeMs, type TaskLimits } from "../../protocol/task.ts";
import { intelSgxRootCaDer } from "../dcap/intel-root.ts";
import { policyFields, type SignerRule } from "../policy.ts";
import type { TcbStatus, TeeType } from "../types.ts";
import { ManifestError } from "./errors.ts";

export const MANIFEST_VERSION = 1;

/** Largest program heap, wall/CPU time and output the task envelope parser accepts (src/protocol/task.ts): a manifest cannot allow more. */
export const protocolTaskCaps = { memoryMb: 4096, timeMs: maxTaskTimeMs, outputBytes: 1 << 30 } as const;

/** Evidence documents are a few KiB; the default refuses to download more than this. */
export const defaultEvidenceBytes = 256 * 1024;

export interface ManifestAttestation {
  /** Production roots, base64 DER. */
  trustedRoots: string[];
  allowSimulation: boolean;
  /** Simulated vendor roots, base64 DER. */
  simulatedRoots: string[];
  /** Absent: every TEE type. */
  teeTypes?: TeeType[];
  acceptedTcbStatuses: TcbStatus[];
  acceptedAdvisoryIds: string[];
  allowDebug: boolean;
  maxCollateralAgeSeconds?: number;
  /** AMD ARK to pin for SEV-SNP, PEM. */
  snpArkPem?: string;
}

/** One enclave code identity: evidence matches it by one of its measurements or signer rules. */
export interface ManifestPackage {
  /** MRENCLAVE / MRTD / SNP MEASUREMENT, lowercase hex. */
  measurements: string[];
  signers: SignerRule[];
}

/** One kind of enclave: the packages whose code may act as it. */
export interface ManifestRole {
  packages: string[];
  /** Accept any code for this role (only for inspecting evidence; contradicts `packages`). */
  anyCode: boolean;
}

export interface ManifestLimits {
  task: {
    /** The limits of a task whose requester named none. */
    defaults: TaskLimits;
    /** The most a task may ask for; `timeMs` bounds both its CPU and its wall time. */
    max: { memoryMb: number; timeMs: number; outputBytes: number };
    /** Encrypted inputs up to this size travel inside the envelope. */
    inlineInputBytes: number;
  };
  /** Largest evidence document the attestation service downloads. */
  evidenceBytes: number;
}

export interface ManifestRegistration {
  /** How long a registration lasts before the enclave must attest again. */
  lifetimeSeconds: number;
}

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  /** A label for people (e.g. "cloister-devnet"); part of the digest like every field. */
  name?: string;
  attestation: ManifestAttestation;
  packages: Record<string, ManifestPackage>;
  roles: Record<string, ManifestRole>;
  limits: ManifestLimits;
  registration: ManifestRegistration;
}

const base64 = (der: Uint8Array) => Buffer.from(der).toString("base64");

const name = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "is not a name of lowercase letters, digits and dashes (starting with a letter)");

const attestationSchema = z.strictObject({
  trustedRoots: z.array(policyFields.productionRoot.transform(base64)).min(1).optional(),
  allowSimulation: z.boolean().default(false),
  simulatedRoots: z.array(policyFields.certificate.transform(base64)).default([]),
  teeTypes: z.array(policyFields.teeType).min(1).optional(),
  acceptedTcbStatuses: z.array(policyFields.tcbStatus).min(1).default(["UpToDate"]),
  acceptedAdvisoryIds: z.array(z.string().regex(/^[A-Z]+-SA-\d+$/, "is not an advisory ID like INTEL-SA-00615")).default([]),
  allowDebug: z.boolean().default(false),
  maxCollateralAgeSeconds: z.number().int().positive().optional(),
  snpArkPem: z.string().includes("BEGIN CERTIFICATE", { message: "is not a PEM certificate" }).optional(),
});

const packageSchema = z.strictObject({
  measurements: policyFields.measurementList.default([]),
  signers: z.array(policyFields.signerRule).default([]),
});

const roleSchema = z.strictObject({
  packages: z.array(name).default([]),
  anyCode: z.boolean().default(false),
}).refine((r) => !(r.anyCode && r.packages.length > 0), {
  path: ["anyCode"],
  message: "contradicts the role's packages: remove anyCode to accept only the packages' code",
});

const positiveInt = (max: number) => z.number().int().positive().max(max);

const limitsSchema = z.strictObject({
  task: z.strictObject({
    defaults: z.strictObject({
      memoryMb: positiveInt(protocolTaskCaps.memoryMb),
      cpuTimeMs: positiveInt(protocolTaskCaps.timeMs),
      timeoutMs: positiveInt(protocolTaskCaps.timeMs),
      maxOutputBytes: z.number().int().nonnegative().max(protocolTaskCaps.outputBytes),
    }).default({ ...defaultTaskLimits }),
    max: z.strictObject({
      memoryMb: positiveInt(protocolTaskCaps.memoryMb).default(protocolTaskCaps.memoryMb),
      timeMs: positiveInt(protocolTaskCaps.timeMs).default(protocolTaskCaps.timeMs),
      outputBytes: z.number().int().nonnegative().max(protocolTaskCaps.outputBytes).default(protocolTaskCaps.outputBytes),
    }).prefault({}),
    inlineInputBytes: z.number().int().nonnegative().max(maxInlineInputBytes).default(maxInlineInputBytes),
  }).prefault({}).superRefine((t, ctx) => {
    const { defaults: d, max: m } = t;
    const over = (field: string, value: number, cap: number, capName: string) => {
      if (value > cap) ctx.addIssue({ code: "custom", path: ["defaults", field], message: `${value} exceeds limits.task.max.${capName} (${cap})` });
    };
    over("memoryMb", d.memoryMb, m.memoryMb, "memoryMb");
    over("cpuTimeMs", d.cpuTimeMs, m.timeMs, "timeMs");
    over("timeoutMs", d.timeoutMs, m.timeMs, "timeMs");
    over("maxOutputBytes", d.maxOutputBytes, m.outputBytes, "outputBytes");
  }),
  evidenceBytes: positiveInt(16 * 1024 * 1024).default(defaultEvidenceBytes),
});

const manifestSchema = z.strictObject({
  $schema: z.string().optional(),
  version: z.literal(MANIFEST_VERSION, {
    error: (issue) => (issue.input === undefined ? "is required" : `${JSON.stringify(issue.input)} is not a manifest version this Cloister reads (${MANIFEST_VERSION})`),
  }),
  name: z.string().min(1).max(200).optional(),
  attestation: attestationSchema.prefault({}),
  packages: z.record(name, packageSchema).default({}),
  roles: z.record(name, roleSchema),
  limits: limitsSchema.prefault({}),
  registration: z.strictObject({
    // At least a minute (a renewal needs time), at most 30 days (evidence and TCB levels go stale).
    lifetimeSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(24 * 3600),
  }).prefault({}),
}).superRefine((m, ctx) => {
  for (const [role, r] of Object.entries(m.roles)) {
    r.packages.forEach((p, i) => {
      if (!(p in m.packages)) ctx.addIssue({ code: "custom", path: ["roles", role, "packages", i], message: `names package "${p}", which "packages" does not define (defined: ${Object.keys(m.packages).join(", ") || "none"})` });
    });
  }
});

function fieldPath(path: readonly PropertyKey[]): string {
  return "manifest" + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}

/** Validates and normalizes a manifest (as read from JSON); the error names every offending field. */
export function parseManifest(json: unknown): Manifest {
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      if (i.code === "unrecognized_keys") return `${fieldPath(i.path)}: unknown field ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
      if (i.code === "invalid_type" && i.input === undefined) return `${fieldPath(i.path)}: is required`;
      if (i.code === "invalid_key") return `${fieldPath(i.path)}: ${i.issues.map((k) => k.message).join(", ")}`;
      return `${fieldPath(i.path)}: ${i.message}`;
    });
    throw new ManifestError("MANIFEST_INVALID", `invalid policy manifest: ${lines.join("; ")}`, { details: { issues: lines } });
  }
  const { $schema: _schema, attestation, ...rest } = parsed.data;
  return {
    ...rest,
    attestation: { ...attestation, trustedRoots: attestation.trustedRoots ?? [base64(intelSgxRootCaDer())] },
  } as Manifest;
}

/** The JSON Schema (draft 2020-12) of a manifest file, for editors and other tools; parseManifest stays the authority. */
export function manifestJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(manifestSchema, { io: "input", unrepresentable: "any" }), title: "Cloister policy manifest" };
}
