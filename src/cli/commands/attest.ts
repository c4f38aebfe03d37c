/**
 * `cloister attest verify` and `cloister attest policy init`: check a quote,
 * an SEV-SNP report or an attested TLS certificate against collateral and a
 * role's policy of a policy manifest (--policy, default the strict production
 * manifest), from files, a PCCS or the certificate itself.
 */
import { writeFile, access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeEvidence } from "../../attestation/evidence-codec.ts";
import { fetchCollateral, loadCollateralFile } from "../../attestation/collateral.ts";
import { manifestJsonSchema, policyForRole, productionManifest, starterManifestText, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { parsePolicy, pinsCode, type Policy } from "../../attestation/policy.ts";
import { parseSnpReport } from "../../attestation/snp/report.ts";
import { verifyEvidence } from "../../attestation/verify.ts";
import type { Claims, DcapCollateral, Evidence, VerificationResult } from "../../attestation/types.ts";
import { parseUnixSeconds, readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";
import { printJson } from "../output.ts";
import { manifestFileOrUsage } from "../manifest-option.ts";
import { attestUsage } from "../usage.ts";
import { certificateJson, certificateLines, isCertificate, loadCertificate, type CertificateInput } from "./attest-certificate.ts";

export async function attestCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "verify") return verifyCommand(rest);
  if (sub === "policy" && rest[0] === "init") return policyInitCommand(rest.slice(1));
  if (sub === "policy" && rest[0] === "schema") {
    // The schema is JSON either way; --json is taken as every command takes it.
    parseArgs({ args: rest.slice(1), options: { json: { type: "boolean" } } });
    printJson(manifestJsonSchema());
    return 0;
  }
  throw new UsageError(`unknown attest command '${[sub, ...rest.slice(0, 1)].filter(Boolean).join(" ")}'\n\n${attestUsage}`);
}

async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      collateral: { type: "string" },
      pccs: { type: "string" },
      vcek: { type: "string" },
      chain: { type: "string" },
      now: { type: "string" },
      policy: { type: "string" },
      role: { type: "string", default: TASK_ROLE },
      "cache-dir": { type: "string" },
      "report-data": { type: "string" },
      measurement: { type: "string", multiple: true },
      mrsigner: { type: "string", multiple: true },
      "any-code": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`attest verify takes exactly one evidence file\n\n${attestUsage}`);
  if (values.collateral && values.pccs) throw new UsageError("give either --collateral or --pccs, not both");
  const now = parseUnixSeconds(values.now, "--now") ?? Math.floor(Date.now() / 1000);
  const manifest = values.policy ? (await manifestFileOrUsage(values.policy)).manifest : productionManifest();
  const policy = pinCode(rolePolicy(manifest, values.role), values.policy !== undefined, values);
  if (policy.anyCode) process.stderr.write("WARNING: --any-code / anyCode: ANY CODE is accepted; this verdict says nothing about what the enclave runs\n");
  const expectedReportData = parseReportData(values["report-data"]);
  const file = positionals[0]!;
  const bytes = await readInputFile(file, "evidence file");
  const certificate = isCertificate(bytes) ? await loadCertificate(file, bytes, values, (quote) => dcapCollateral(quote, values)) : undefined;
  const evidence = certificate?.evidence ?? (await loadEvidence(file, bytes, values));

  const result = await verifyEvidence(evidence, { policy, now, ...(expectedReportData ? { expectedReportData } : {}) });
  const claims = result.claims ?? describeUnverified(evidence);
  if (!result.ok && claims && (await presentsAsSimulated(claims))) claims.simulated = true;
  if (values.json) printJson({ ...toJson(evidence, result, claims), ...(certificate ? { keyBinding: certificate.info.keyBinding, certificate: certificateJson(certificate) } : {}) });
  else printHuman(result, claims, now, policy, certificate);
  return result.ok && result.accepted && (certificate?.info.keyBinding ?? true) ? 0 : 1;
}

/**
 * Adds the code pins of --measurement / --mrsigner to the policy, or accepts
 * any code on an explicit --any-code (which replaces the default policy's
 * released measurements, and contradicts a policy file's pins).
 */
function pinCode(policy: Policy, fromFile: boolean, flags: { measurement?: string[]; mrsigner?: string[]; "any-code"?: boolean }): Policy {
  const measurements = flags.measurement ?? [];
  const signers = flags.mrsigner ?? [];
  if (flags["any-code"]) {
    if (measurements.length > 0 || signers.length > 0) throw new UsageError("--any-code contradicts --measurement / --mrsigner: give the code to accept, or accept any code");
    if (fromFile && pinsCode(policy)) throw new UsageError("--any-code contradicts the measurements / signers of the policy file");
    return { ...policy, measurements: undefined, signers: undefined, anyCode: true };
  }
  if (measurements.length === 0 && signers.length === 0) return policy;
  for (const m of measurements) {
    if (!/^(0x)?([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$/.test(m)) throw new UsageError(`--measurement takes a 32-byte (MRENCLAVE) or 48-byte (MRTD, SNP) hex measurement, got '${m}'`);
  }
  for (const m of signers) {
    if (!/^(0x)?[0-9a-fA-F]{64}$/.test(m)) throw new UsageError(`--mrsigner takes a 32-byte hex MRSIGNER, got '${m}'`);
  }
  const pins = parsePolicy({ measurements, signers: signers.map((signer) => ({ signer })) });
  return {
    ...policy,
    anyCode: false,
    measurements: [...(policy.measurements ?? []), ...(pins.measurements ?? [])],
    signers: [...(policy.signers ?? []), ...(pins.signers ?? [])],
  };
}

function parseReportData(value: string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const hex = value.replace(/^0x/i, "");
  if (!/^[0-9a-fA-F]{128}$/.test(hex)) throw new UsageError(`--report-data takes 64 bytes of hex (128 hex digits), got '${value}'`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/**
 * Evidence that failed verification but carries the simulated PKI's FMSPC is
 * shown as SIMULATED: not trusted (nothing unverified is), but it tells the
 * user why a default policy refuses it and what to change.
 */
async function presentsAsSimulated(claims: Claims): Promise<boolean> {
  if (claims.simulated || !claims.fmspc) return claims.simulated;
  // Loaded only on this path: the simulated PKI module pulls in an X.509 library.
  const { SIM_FMSPC } = await import("../../attestation/sim/pki.ts");
  return claims.fmspc === SIM_FMSPC.toLowerCase();
}

/** What an SEV-SNP report says about itself when it could not be verified, for display only. */
function describeUnverified(evidence: Evidence): Claims | undefined {
  if (evidence.teeType !== "SEV-SNP") return undefined;
  try {
    const r = parseSnpReport(evidence.report);
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    return {
      teeType: "SEV-SNP",
      quoteVersion: r.version,
      measurement: hex(r.measurement),
      reportData: hex(r.reportData),
      debug: r.policy.debugAllowed,
      simulated: false,
      advisoryIds: [],
      extra: { vmpl: r.vmpl, policy: `0x${r.policy.raw.toString(16)}`, chipId: hex(r.chipId), reportedTcb: r.reportedTcb },
    };
  } catch {
    return undefined;
  }
}

function rolePolicy(manifest: Parameters<typeof policyForRole>[0], role: string): Policy {
  try {
    return policyForRole(manifest, role);
  } catch (error) {
    throw new UsageError(`--role: ${(error as Error).message}`);
  }
}

interface EvidenceFlags {
  collateral?: string;
  pccs?: string;
  vcek?: string;
  chain?: string;
  "cache-dir"?: string;
}

async function loadEvidence(file: string, bytes: Uint8Array, flags: EvidenceFlags): Promise<Evidence> {
  if (bytes[0] === 0x7b /* '{' */) {
    let evidence: Evidence;
    try {
      evidence = decodeEvidence(bytes);
    } catch (error) {
      throw new UsageError(`evidence file '${file}': ${(error as Error).message}`);
    }
    // A published DCAP evidence document may leave collateral to the verifier.
    if (evidence.teeType === "SEV-SNP" || (evidence.collateral && !flags.collateral && !flags.pccs)) return evidence;
    return { teeType: evidence.teeType, quote: evidence.quote, collateral: await dcapCollateral(evidence.quote, flags) };
  }
  if (flags.vcek || flags.chain) {
    if (!flags.vcek || !flags.chain) throw new UsageError("an SEV-SNP report needs both --vcek <der> and --chain <pem>");
    const vcek = await readInputFile(flags.vcek, "VCEK certificate");
    const chainPem = new TextDecoder().decode(await readInputFile(flags.chain, "ASK/ARK chain"));
    return { teeType: "SEV-SNP", report: bytes, collateral: { vcek, chainPem } };
  }
  return { teeType: quoteTeeType(bytes), quote: bytes, collateral: await dcapCollateral(bytes, flags) };
}

async function dcapCollateral(quote: Uint8Array, flags: EvidenceFlags): Promise<DcapCollateral> {
  if (flags.collateral) {
    try {
      return await loadCollateralFile(flags.collateral);
    } catch (error) {
      throw new UsageError(`collateral file '${flags.collateral}' is unusable: ${(error as Error).message}`);
    }
  }
  if (flags.pccs) {
    const cacheDir = flags["cache-dir"] ?? join(homedir(), ".cache", "cloister", "collateral");
    return fetchCollateral(quote, { pccsUrl: flags.pccs, cacheDir });
  }
  throw new UsageError("a DCAP quote needs collateral: pass --collateral <json> or --pccs <url> (for example https://api.trustedservices.intel.com)");
}

/** Header bytes 4..8 hold the TEE type: 0 SGX, 0x81 TDX. Anything else is left to the verifier to refuse. */
function quoteTeeType(quote: Uint8Array): "SGX" | "TDX" {
  if (quote.length >= 8 && new DataView(quote.buffer, quote.byteOffset).getUint32(4, true) === 0x81) return "TDX";
  return "SGX";
}

function toJson(evidence: Evidence, r: VerificationResult, c: Claims | undefined) {
  return {
    ok: r.ok,
    accepted: r.accepted,
    teeType: c?.teeType ?? evidence.teeType,
    quoteVersion: c?.quoteVersion ?? null,
    tcbStatus: r.ok ? (c?.tcbStatus ?? null) : null,
    advisoryIds: c?.advisoryIds ?? [],
    measurement: c?.measurement ?? null,
    signer: c?.signer ?? null,
    reportData: c?.reportData ?? null,
    debug: c?.debug ?? null,
    simulated: c?.simulated ?? false,
    fmspc: c?.fmspc ?? null,
    details: c?.extra ?? {},
    ...(r.error ? { error: r.error } : {}),
    reasons: r.reasons,
  };
}

function printHuman(r: VerificationResult, c: Claims | undefined, now: number, policy: Policy, certificate?: CertificateInput): void {
  const lines: string[] = [];
  const verdict = r.ok ? (r.accepted ? "AUTHENTIC and ACCEPTED by the policy" : "AUTHENTIC but REFUSED by the policy") : "NOT AUTHENTIC";
  const unbound = certificate && !certificate.info.keyBinding ? " [KEY NOT BOUND: the evidence does not vouch for this certificate's key]" : "";
  lines.push(`${c?.simulated ? "[SIMULATED TEE] " : ""}${verdict}${policy.anyCode ? " [ANY CODE ACCEPTED: the enclave's code was not checked]" : ""}${unbound}`);
  if (certificate) lines.push(...certificateLines(certificate));
  if (c) {
    lines.push(`  TEE            ${c.teeType}${c.simulated ? " (SIMULATED: chains to the simulated vendor root, proves nothing about hardware)" : ""}, quote version ${c.quoteVersion}`);
    if (r.ok && c.tcbStatus) lines.push(`  TCB status     ${c.tcbStatus}${c.advisoryIds.length ? ` (${c.advisoryIds.join(", ")})` : ""}`);
    lines.push(`  measurement    ${c.measurement}`);
    if (c.signer) lines.push(`  signer         ${c.signer}`);
    if (c.fmspc) lines.push(`  FMSPC          ${c.fmspc}`);
    lines.push(`  debug          ${c.debug ? "yes" : "no"}`);
    lines.push(`  report_data    ${c.reportData}`);
    if (c.teeType === "SEV-SNP" && c.extra) lines.push(`  VMPL / policy  ${String(c.extra.vmpl)} / ${String(c.extra.policy)}`);
    if (!r.ok) lines.push("  (claims read from unverified evidence: do not rely on them)");
  }
  lines.push(`  evaluated at   ${new Date(now * 1000).toISOString()}`);
  if (r.error) lines.push(`  error          ${r.error}`);
  for (const reason of r.reasons) lines.push(`  refused        ${reason}`);
  if (c?.simulated && !r.ok) {
    lines.push("  hint           this is a SIMULATED quote; for development only, accept it with a policy that sets \"allowSimulation\": true and lists the network's simulated root (<pki dir>/sim-root-ca.pem) in \"simulatedRoots\"");
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function policyInitCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
  const file = positionals[0] ?? "cloister-manifest.jsonc";
  const exists = await access(file).then(() => true, () => false);
  if (exists && !values.force) throw new UsageError(`'${file}' already exists; pass --force to overwrite it`);
  await writeFile(file, starterManifestText());
  if (values.json) printJson({ wrote: file });
  else process.stdout.write(`wrote a starter policy manifest to ${file}: edit the allowed measurements, then pass it with --policy ${file}\n`);
  return 0;
}
