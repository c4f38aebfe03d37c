/**
 * `cloister attest` through the real CLI (a child process per run): every
 * shared Intel and AMD case, the exit codes, the JSON fields, human output,
 * a simulated quote end to end, and `attest policy init`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeEvidence } from "../../src/attestation/evidence-codec.ts";
import { cases, type DcapCase } from "../attestation/dcap-helpers.ts";
import { loadManifestFile, policyForRole } from "../../src/attestation/manifest/index.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";

const testdata = fileURLToPath(new URL("../../../shared/testdata/attestation/", import.meta.url));
const cli = fileURLToPath(new URL("../../bin/cloister.js", import.meta.url));

interface SnpCase {
  name: string;
  report_file: string;
  vcek_file: string;
  cert_chain_file: string;
  now_secs: number;
  expect: { ok: boolean; tee_type: "SEV-SNP"; report_version: number; vmpl: number; policy_hex: string; measurement: string; report_data: string };
}

interface VerifyJson {
  ok: boolean;
  accepted: boolean;
  teeType: string;
  quoteVersion: number | null;
  tcbStatus: string | null;
  advisoryIds: string[];
  measurement: string | null;
  signer: string | null;
  reportData: string | null;
  debug: boolean | null;
  simulated: boolean;
  fmspc: string | null;
  details: Record<string, unknown>;
  error?: string;
  reasons: string[];
}

const intelCases = cases();
const snpCases = JSON.parse(await readFile(join(testdata, "snp_cases.json"), "utf8")) as SnpCase[];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function verifyJson(args: string[]): Promise<{ run: Run; out: VerifyJson }> {
  const run = await runCli(["attest", "verify", ...args, "--json"]);
  const lines = run.stdout.trim().split("\n");
  assert.ok(lines.length === 1 && lines[0] !== "", `--json prints exactly one line; exit ${run.code}, stdout: ${run.stdout}, stderr: ${run.stderr}`);
  return { run, out: JSON.parse(lines[0]!) as VerifyJson };
}

const intelArgs = (c: DcapCase) => [join(testdata, c.quote_file), "--collateral", join(testdata, c.collateral_file), "--now", String(c.now_secs)];
const snpArgs = (c: SnpCase) => [join(testdata, c.report_file), "--vcek", join(testdata, c.vcek_file), "--chain", join(testdata, c.cert_chain_file), "--now", String(c.now_secs)];

function assertVerdict(out: VerifyJson, run: Run, ok: boolean, accepted: boolean): void {
  assert.equal(out.ok, ok, `ok: ${out.error ?? ""}`);
  assert.equal(out.accepted, accepted, `accepted: ${out.reasons.join("; ")}`);
  assert.equal(run.code, ok && accepted ? 0 : 1, `exit code; stderr: ${run.stderr}`);
  if (!ok) {
    assert.match(out.error ?? "", /^[A-Z_]+: \S/, "error names a code and what failed");
    assert.equal(out.tcbStatus, null);
  } else {
    assert.equal(out.error, undefined);
  }
  if (!accepted) assert.ok(out.reasons.length > 0, "a refusal says why");
  else assert.deepEqual(out.reasons, []);
}

function assertIntelClaims(out: VerifyJson, c: DcapCase): void {
  const e = c.expect;
  assert.equal(out.teeType, e.tee_type);
  assert.equal(out.quoteVersion, e.quote_version);
  assert.equal(out.tcbStatus, e.ok ? e.tcb_status : null);
  assert.deepEqual([...out.advisoryIds].sort(), e.ok ? [...(e.advisory_ids ?? [])].sort() : []);
  assert.equal(out.measurement, e.tee_type === "SGX" ? e.mr_enclave : e.mr_td);
  assert.equal(out.signer, e.tee_type === "SGX" ? e.mr_signer : null);
  assert.equal(out.reportData, e.report_data);
  assert.equal(out.debug, false);
  assert.equal(out.simulated, false);
  assert.equal(out.fmspc, e.fmspc.toLowerCase());
}

function assertSnpClaims(out: VerifyJson, c: SnpCase): void {
  const e = c.expect;
  assert.equal(out.teeType, "SEV-SNP");
  assert.equal(out.quoteVersion, e.report_version);
  assert.equal(out.tcbStatus, null, "AMD has no Intel TCB status");
  assert.deepEqual(out.advisoryIds, []);
  assert.equal(out.measurement, e.measurement);
  assert.equal(out.signer, null);
  assert.equal(out.reportData, e.report_data);
  assert.equal(out.debug, (BigInt(e.policy_hex) & (1n << 19n)) !== 0n);
  assert.equal(out.simulated, false);
  assert.equal(out.fmspc, null);
  assert.equal(out.details.vmpl, e.vmpl);
  assert.equal(out.details.policy, e.policy_hex);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-attest-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A policy file accepting exactly what a case presents (its TCB status, advisories, debug, measurement). */
async function acceptingPolicy(name: string, policy: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${name}.policy.json`);
  await writeFile(file, JSON.stringify(policy));
  return file;
}

const ALL_TCB_STATUSES = ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked"];

describe("attest verify: shared Intel cases", { concurrency: 2 }, () => {
  for (const c of intelCases) {
    test(`${c.name} with the production policy`, async () => {
      const { run, out } = await verifyJson(intelArgs(c));
      // Production policy: released Cloister enclaves only (none yet), UpToDate only, no advisories.
      assertVerdict(out, run, c.expect.ok, false);
      assertIntelClaims(out, c);
      if (c.expect.ok) assert.ok(out.reasons.some((r) => r.includes("no code pinned")), "the refusal says no code is pinned");
      if (c.expect.ok && c.expect.tcb_status !== "UpToDate") assert.ok(out.reasons.some((r) => r.includes(c.expect.tcb_status!)), "the refusal names the TCB status");
    });

    if (c.expect.ok && c.expect.tcb_status === "UpToDate") {
      test(`${c.name} pinned with --measurement`, async () => {
        const { run, out } = await verifyJson([...intelArgs(c), "--measurement", (c.expect.mr_td ?? c.expect.mr_enclave)!]);
        assertVerdict(out, run, true, true);
      });
    }

    test(`${c.name} with a policy accepting its TCB status and advisories`, async () => {
      const measurement = c.expect.tee_type === "SGX" ? c.expect.mr_enclave : c.expect.mr_td;
      const policy = await acceptingPolicy(c.name, {
        acceptedTcbStatuses: c.expect.ok ? [c.expect.tcb_status] : ALL_TCB_STATUSES,
        acceptedAdvisoryIds: c.expect.advisory_ids ?? [],
        measurements: [measurement],
      });
      const { run, out } = await verifyJson([...intelArgs(c), "--policy", policy]);
      assertVerdict(out, run, c.expect.ok, c.expect.ok);
      assertIntelClaims(out, c);
    });
  }
});

describe("attest verify: shared SEV-SNP cases", { concurrency: 2 }, () => {
  for (const c of snpCases) {
    test(`${c.name} with the production policy`, async () => {
      const { run, out } = await verifyJson(snpArgs(c));
      // The real report allows debug, which the production policy refuses.
      assertVerdict(out, run, c.expect.ok, false);
      assertSnpClaims(out, c);
      if (c.expect.ok) assert.ok(out.reasons.some((r) => /debug/.test(r)));
    });

    test(`${c.name} with a policy allowing debug and pinning its measurement`, async () => {
      const policy = await acceptingPolicy(c.name, { allowDebug: true, teeTypes: ["SEV-SNP"], measurements: [snpCases[0]!.expect.measurement] });
      const { run, out } = await verifyJson([...snpArgs(c), "--policy", policy]);
      assertVerdict(out, run, c.expect.ok, c.expect.ok);
      assertSnpClaims(out, c);
    });
  }
});

describe("attest verify: policy and freshness refusals", { concurrency: 2 }, () => {
  const tdx = intelCases.find((c) => c.name === "tdx_v4_ok")!;

  test("a measurement not in the policy is refused, exit 1", async () => {
    const policy = await acceptingPolicy("wrong-measurement", { measurements: ["00".repeat(48)] });
    const { run, out } = await verifyJson([...intelArgs(tdx), "--policy", policy]);
    assertVerdict(out, run, true, false);
    assert.ok(out.reasons.some((r) => r.includes(tdx.expect.mr_td!)), out.reasons.join("; "));
  });

  test("--report-data must match the quote's report_data", async () => {
    const good = await verifyJson([...intelArgs(tdx), "--measurement", tdx.expect.mr_td!, "--report-data", tdx.expect.report_data]);
    assertVerdict(good.out, good.run, true, true);
    const stale = await verifyJson([...intelArgs(tdx), "--measurement", tdx.expect.mr_td!, "--report-data", "11".repeat(64)]);
    assertVerdict(stale.out, stale.run, true, false);
    assert.ok(stale.out.reasons.some((r) => /report_data/i.test(r)), stale.out.reasons.join("; "));
  });
});

describe("attest verify: code pinning (issue 10, finding 5)", { concurrency: 2 }, () => {
  const tdx = intelCases.find((c) => c.name === "tdx_v4_ok")!;
  const sgx = intelCases.find((c) => c.name === "sgx_v3_ok")!;

  test("a genuine quote of unrelated code is authentic but refused without a policy: no code pinned", async () => {
    const { run, out } = await verifyJson(intelArgs(tdx));
    assertVerdict(out, run, true, false);
    assert.deepEqual(out.reasons.filter((r) => /no code pinned/.test(r)).length, 1, out.reasons.join("; "));
    assert.match(out.reasons.join(" "), /--measurement/, "the refusal says how to pin code");
  });

  test("--measurement pins code: the quote's own is accepted, another is refused", async () => {
    const pinned = await verifyJson([...intelArgs(tdx), "--measurement", tdx.expect.mr_td!]);
    assertVerdict(pinned.out, pinned.run, true, true);
    const other = await verifyJson([...intelArgs(tdx), "--measurement", "00".repeat(48)]);
    assertVerdict(other.out, other.run, true, false);
    assert.ok(other.out.reasons.some((r) => r.includes(tdx.expect.mr_td!)), other.out.reasons.join("; "));
  });

  test("--mrsigner pins an SGX signer (with a policy accepting the quote's TCB)", async () => {
    const policy = await acceptingPolicy("sgx-tcb-only", { acceptedTcbStatuses: [sgx.expect.tcb_status], acceptedAdvisoryIds: sgx.expect.advisory_ids ?? [] });
    const unpinned = await verifyJson([...intelArgs(sgx), "--policy", policy]);
    assertVerdict(unpinned.out, unpinned.run, true, false);
    assert.ok(unpinned.out.reasons.some((r) => /no code pinned/.test(r)), "a policy file that lists no code pins none");
    const bySigner = await verifyJson([...intelArgs(sgx), "--policy", policy, "--mrsigner", sgx.expect.mr_signer!]);
    assertVerdict(bySigner.out, bySigner.run, true, true);
    const otherSigner = await verifyJson([...intelArgs(sgx), "--policy", policy, "--mrsigner", "11".repeat(32)]);
    assertVerdict(otherSigner.out, otherSigner.run, true, false);
  });

  test("--any-code accepts any code, and says so loudly", async () => {
    const { run, out } = await verifyJson([...intelArgs(tdx), "--any-code"]);
    assertVerdict(out, run, true, true);
    assert.match(run.stderr, /ANY CODE/);
    const human = await runCli(["attest", "verify", ...intelArgs(tdx), "--any-code"]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /ANY CODE/);
  });

  test("--policy takes a manifest: the --role's packages are the code accepted", async () => {
    const manifest = await acceptingPolicy("manifest", {
      version: 1,
      packages: { tdx: { measurements: [tdx.expect.mr_td] }, other: { measurements: ["00".repeat(48)] } },
      roles: { task: { packages: ["other"] }, vault: { packages: ["tdx"] } },
    });
    const asTask = await verifyJson([...intelArgs(tdx), "--policy", manifest]);
    assertVerdict(asTask.out, asTask.run, true, false);
    assert.equal(asTask.run.stderr.includes("old policy file"), false, "a manifest needs no conversion note");
    const asVault = await verifyJson([...intelArgs(tdx), "--policy", manifest, "--role", "vault"]);
    assertVerdict(asVault.out, asVault.run, true, true);
    const unknown = await runCli(["attest", "verify", ...intelArgs(tdx), "--policy", manifest, "--role", "pipeline"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--role: .*names no role "pipeline"/);
  });

  test("an old policy file loads, with a note saying how to convert it; one with expectedReportData says how to convert it", async () => {
    const legacy = await acceptingPolicy("legacy", { measurements: [tdx.expect.mr_td] });
    const { run, out } = await verifyJson([...intelArgs(tdx), "--policy", legacy]);
    assertVerdict(out, run, true, true);
    assert.match(run.stderr, /old policy file.*cloister policy show --policy .*--json > manifest\.json/);
    const pinned = await acceptingPolicy("legacy-report-data", { measurements: [tdx.expect.mr_td], expectedReportData: "00".repeat(64) });
    const refused = await runCli(["attest", "verify", ...intelArgs(tdx), "--policy", pinned]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /expectedReportData.*--report-data/);
  });

  test("a policy file with anyCode: true accepts any code; --any-code with --measurement is unusable", async () => {
    const policy = await acceptingPolicy("any-code", { anyCode: true });
    const { run, out } = await verifyJson([...intelArgs(tdx), "--policy", policy]);
    assertVerdict(out, run, true, true);
    const both = await runCli(["attest", "verify", ...intelArgs(tdx), "--any-code", "--measurement", tdx.expect.mr_td!]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--any-code/);
    const bad = await runCli(["attest", "verify", ...intelArgs(tdx), "--measurement", "xyz"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--measurement.*'xyz'/);
  });
});

describe("attest verify: unusable arguments exit 2", { concurrency: 2 }, () => {
  const sgx = intelCases.find((c) => c.name === "sgx_v3_ok")!;
  const usage = async (args: string[], pattern: RegExp) => {
    const run = await runCli(["attest", "verify", ...args, "--json"]);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stdout, "", "no verdict is printed for unusable arguments");
    assert.match(run.stderr, pattern);
  };

  test("a missing evidence file", () => usage([join(dir, "missing.bin"), "--collateral", join(testdata, sgx.collateral_file)], /missing\.bin.*no such file/));
  test("a missing collateral file", () => usage([join(testdata, sgx.quote_file), "--collateral", join(dir, "missing.json")], /missing\.json/));
  test("a DCAP quote without collateral", () => usage([join(testdata, sgx.quote_file)], /needs collateral.*--collateral.*--pccs/));
  test("--now that is not unix seconds", () => usage([...intelArgs(sgx).slice(0, 3), "--now", "abc"], /--now.*'abc'/));
  test("a policy file with a bad field names the field", async () => {
    const policy = await acceptingPolicy("bad", { acceptedTcbStatuses: ["UpToDate", "Fine"], allowDebug: "no" });
    await usage([...intelArgs(sgx), "--policy", policy], /policy\.acceptedTcbStatuses\[1\].*"Fine"/);
  });
  test("a policy file with an unknown field names it", async () => {
    const policy = await acceptingPolicy("unknown", { alowDebug: true });
    await usage([...intelArgs(sgx), "--policy", policy], /unknown field "alowDebug"/);
  });
  test("an SEV-SNP report with --vcek but no --chain", () => usage([join(testdata, snpCases[0]!.report_file), "--vcek", join(testdata, snpCases[0]!.vcek_file)], /--chain/));
});

describe("attest verify: human output", { concurrency: 2 }, () => {
  test("an authentic but refused quote says so and why", async () => {
    const sgx = intelCases.find((c) => c.name === "sgx_v3_ok")!;
    const run = await runCli(["attest", "verify", ...intelArgs(sgx)]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /AUTHENTIC but REFUSED/);
    assert.match(run.stdout, /ConfigurationAndSWHardeningNeeded/);
    assert.match(run.stdout, new RegExp(sgx.expect.mr_enclave!));
    assert.doesNotMatch(run.stdout, /SIMULATED/);
  });

  test("a tampered quote is NOT AUTHENTIC with the failed check", async () => {
    const bad = intelCases.find((c) => c.name === "sgx_v3_tampered_report_data")!;
    const run = await runCli(["attest", "verify", ...intelArgs(bad)]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /NOT AUTHENTIC/);
    assert.match(run.stdout, /QUOTE_SIGNATURE_INVALID/);
  });
});

describe("attest verify: a simulated quote", { concurrency: 2 }, () => {
  const mrEnclave = "5a".repeat(32);
  let files: { quote: string; collateral: string; evidence: string; acceptSim: string; acceptSimOtherCode: string };

  before(async () => {
    const pkiDir = join(dir, "sim-pki");
    const provider = new SimulatedProvider({ pkiDir, mrEnclave });
    const evidence = await provider.attest(new Uint8Array(64).fill(7));
    assert.ok(evidence.teeType === "SGX" && evidence.collateral);
    const rootPem = await readFile(join(pkiDir, "sim-root-ca.pem"), "utf8");
    files = {
      quote: join(dir, "sim-quote.bin"),
      collateral: join(dir, "sim-collateral.json"),
      evidence: join(dir, "sim-evidence.json"),
      acceptSim: await acceptingPolicy("sim", { allowSimulation: true, simulatedRoots: [rootPem], measurements: [mrEnclave] }),
      acceptSimOtherCode: await acceptingPolicy("sim-other", { allowSimulation: true, simulatedRoots: [rootPem], measurements: ["a5".repeat(32)] }),
    };
    await writeFile(files.quote, evidence.quote);
    await writeFile(files.collateral, JSON.stringify(evidence.collateral));
    await writeFile(files.evidence, encodeEvidence(evidence));
  });

  test("is refused by the default policy: its root is not trusted", async () => {
    const { run, out } = await verifyJson([files.quote, "--collateral", files.collateral]);
    assertVerdict(out, run, false, false);
    assert.match(out.error!, /^UNTRUSTED_ROOT: .*SIMULATED/);
    assert.equal(out.measurement, mrEnclave);
    assert.equal(out.simulated, true, "unverified, but shown as the simulated evidence it presents itself as");
  });

  test("is accepted with allowSimulation, the simulated root and its measurement, marked simulated", async () => {
    const { run, out } = await verifyJson([files.quote, "--collateral", files.collateral, "--policy", files.acceptSim]);
    assertVerdict(out, run, true, true);
    assert.equal(out.simulated, true);
    assert.equal(out.teeType, "SGX");
    assert.equal(out.quoteVersion, 3);
    assert.equal(out.tcbStatus, "UpToDate");
    assert.equal(out.measurement, mrEnclave);
    assert.equal(out.reportData, "07".repeat(64));
  });

  test("as an evidence JSON document: accepted only for its own measurement", async () => {
    const ok = await verifyJson([files.evidence, "--policy", files.acceptSim]);
    assertVerdict(ok.out, ok.run, true, true);
    assert.equal(ok.out.simulated, true);
    const other = await verifyJson([files.evidence, "--policy", files.acceptSimOtherCode]);
    assertVerdict(other.out, other.run, true, false);
  });

  test("human output says SIMULATED, accepted or refused", async () => {
    const accepted = await runCli(["attest", "verify", files.evidence, "--policy", files.acceptSim]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /SIMULATED/);
    assert.match(accepted.stdout, /ACCEPTED/);
    const refused = await runCli(["attest", "verify", files.evidence]);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /SIMULATED/);
    assert.match(refused.stdout, /NOT AUTHENTIC/);
    assert.match(refused.stdout, /allowSimulation/, "the refusal says how to accept simulated evidence");
  });
});

describe("attest policy init", () => {
  test("writes a commented starter manifest that loadManifestFile parses, and refuses to overwrite it", async () => {
    const file = join(dir, "starter.jsonc");
    const run = await runCli(["attest", "policy", "init", file]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(file, "utf8");
    assert.match(text, /^\/\//m, "the starter manifest is commented");
    const loaded = await loadManifestFile(file);
    assert.equal(loaded.convertedFromPolicyFile, false);
    const policy = policyForRole(loaded.manifest, "task");
    assert.equal(policy.allowSimulation, false);
    assert.equal(policy.allowDebug, false);
    assert.deepEqual(policy.acceptedTcbStatuses, ["UpToDate"]);
    const again = await runCli(["attest", "policy", "init", file]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists.*--force/);
  });
});

test("attest policy schema prints the manifest's JSON Schema", async () => {
  const run = await runCli(["attest", "policy", "schema"]);
  assert.equal(run.code, 0);
  const schema = JSON.parse(run.stdout) as { title: string; properties: Record<string, unknown> };
  assert.equal(schema.title, "Cloister policy manifest");
  for (const field of ["version", "attestation", "packages", "roles", "limits", "registration"]) assert.ok(field in schema.properties, field);
});
