import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONVERTED_PACKAGE, loadManifestFile, manifestDigest, manifestFromJson, manifestJsonSchema, ManifestError, parseManifest,
  parseManifestText, policyForAllRoles, policyForRole, productionManifest, starterManifestText, TASK_ROLE,
} from "../../src/attestation/manifest/index.ts";
import { intelSgxRootCaDer } from "../../src/attestation/dcap/intel-root.ts";
import { loadOrCreateSimPki, simRootDer } from "../../src/attestation/sim/pki.ts";
import { evaluatePolicy, productionPolicy } from "../../src/attestation/policy.ts";
import { releasedEnclaveMeasurements } from "../../src/attestation/releases.ts";
import type { Claims } from "../../src/attestation/types.ts";
import { defaultTaskLimits } from "../../src/protocol/task.ts";
import { CloisterError } from "../../src/util/base-error.ts";

const A = "aa".repeat(32);
const B = "bb".repeat(48);
const SIGNER = "cc".repeat(32);

/** A manifest with two roles over two packages, every section written out. */
function fullManifest(): Record<string, unknown> {
  return {
    version: 1,
    name: "two-roles",
    attestation: { trustedRoots: ["intel-sgx-root-ca"], acceptedTcbStatuses: ["UpToDate", "SWHardeningNeeded"], acceptedAdvisoryIds: ["INTEL-SA-00615"], teeTypes: ["SGX", "TDX"], maxCollateralAgeSeconds: 3600 },
    packages: {
      "task-image": { measurements: [A], signers: [{ signer: SIGNER, productId: 1, minSvn: 2 }] },
      "vault-image": { measurements: [B] },
    },
    roles: { task: { packages: ["task-image"] }, vault: { packages: ["vault-image"] } },
    limits: { task: { defaults: { memoryMb: 32, cpuTimeMs: 1000, timeoutMs: 4000, maxOutputBytes: 1024 }, max: { memoryMb: 128, timeMs: 60_000, outputBytes: 4096 }, inlineInputBytes: 1024 }, evidenceBytes: 65536 },
    registration: { lifetimeSeconds: 3600 },
  };
}

function claims(over: Partial<Claims> = {}): Claims {
  return { teeType: "SGX", quoteVersion: 3, measurement: A, reportData: "00".repeat(64), debug: false, simulated: false, tcbStatus: "UpToDate", advisoryIds: [], ...over };
}

/** The same JSON with every object's keys in reverse order. */
function shuffled(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shuffled);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, shuffled(v)]));
  return value;
}

test("a manifest fills strict defaults: Intel root, no simulation, UpToDate, the protocol's task limits, 24 h registrations", () => {
  const m = parseManifest({ version: 1, roles: { task: {} } });
  assert.deepEqual(m.attestation.trustedRoots, [Buffer.from(intelSgxRootCaDer()).toString("base64")]);
  assert.equal(m.attestation.allowSimulation, false);
  assert.equal(m.attestation.allowDebug, false);
  assert.deepEqual(m.attestation.acceptedTcbStatuses, ["UpToDate"]);
  assert.deepEqual(m.limits.task.defaults, defaultTaskLimits);
  assert.deepEqual(m.limits.task.max, { memoryMb: 4096, timeMs: 3_600_000, outputBytes: 1 << 30 });
  assert.equal(m.registration.lifetimeSeconds, 24 * 3600);
  assert.deepEqual(m.roles.task, { packages: [], anyCode: false });
});

test("a manifest with every section parses, normalized (hex lowercased, 0x dropped)", () => {
  const json = fullManifest();
  (json.packages as Record<string, { measurements: string[] }>)["task-image"]!.measurements = [`0x${A.toUpperCase()}`];
  const m = parseManifest(json);
  assert.deepEqual(m.packages["task-image"]!.measurements, [A]);
  assert.equal(m.limits.task.max.memoryMb, 128);
  assert.equal(m.registration.lifetimeSeconds, 3600);
  assert.equal(m.name, "two-roles");
});

test("invalid manifests are refused with every offending field named", () => {
  const cases: [unknown, RegExp][] = [
    [{ roles: { task: {} } }, /manifest\.version: is required/],
    [{ version: 2, roles: { task: {} } }, /manifest\.version: 2 is not a manifest version this Cloister reads \(1\)/],
    [{ version: 1 }, /manifest\.roles: is required/],
    [{ version: 1, roles: { task: {} }, policy: {} }, /manifest: unknown field "policy"/],
    [{ version: 1, roles: { task: { packages: ["nope"] } } }, /manifest\.roles\.task\.packages\[0\]: names package "nope", which "packages" does not define/],
    [{ version: 1, roles: { Task: {} } }, /manifest\.roles\.Task: .*lowercase letters/],
    [{ version: 1, packages: { p: { measurements: [A] } }, roles: { task: { packages: ["p"], anyCode: true } } }, /manifest\.roles\.task\.anyCode: contradicts the role's packages/],
    [{ version: 1, packages: { p: { measurements: ["12"] } }, roles: { task: {} } }, /manifest\.packages\.p\.measurements\[0\]: "12" is not "cloister-released" or a 32-byte/],
    [{ version: 1, roles: { task: {} }, attestation: { acceptedTcbStatuses: ["Great"] } }, /manifest\.attestation\.acceptedTcbStatuses\[0\]: "Great" is not a TCB status/],
    [{ version: 1, roles: { task: {} }, attestation: { trustedRoots: [] } }, /manifest\.attestation\.trustedRoots/],
    [{ version: 1, roles: { task: {} }, limits: { task: { defaults: { memoryMb: 256, cpuTimeMs: 1, timeoutMs: 1, maxOutputBytes: 1 }, max: { memoryMb: 128 } } } }, /manifest\.limits\.task\.defaults\.memoryMb: 256 exceeds limits\.task\.max\.memoryMb \(128\)/],
    [{ version: 1, roles: { task: {} }, limits: { task: { max: { memoryMb: 8192 } } } }, /manifest\.limits\.task\.max\.memoryMb/],
    [{ version: 1, roles: { task: {} }, registration: { lifetimeSeconds: 10 } }, /manifest\.registration\.lifetimeSeconds/],
  ];
  for (const [json, message] of cases) {
    assert.throws(() => parseManifest(json), (e: unknown) => e instanceof ManifestError && e instanceof CloisterError && e.code === "MANIFEST_INVALID" && message.test(e.message), `expected ${message} for ${JSON.stringify(json)}`);
  }
});

test("the digest ignores key order and spelling, and changes with any change of meaning", () => {
  const base = manifestDigest(parseManifest(fullManifest()));
  assert.match(base, /^0x[0-9a-f]{64}$/);
  assert.equal(manifestDigest(parseManifest(shuffled(fullManifest()))), base, "same manifest, keys shuffled");
  assert.equal(manifestDigest(parseManifest(fullManifest())), base, "stable across parses");
  const spelled = fullManifest();
  (spelled.packages as Record<string, { measurements: string[] }>)["task-image"]!.measurements = [`0x${A.toUpperCase()}`];
  assert.equal(manifestDigest(parseManifest(spelled)), base, "0x and upper-case hex normalize away");

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- edits of free-form test JSON
  const changes: [string, (m: Record<string, any>) => void][] = [
    ["a measurement", (m) => { m.packages["task-image"].measurements = ["ab".repeat(32)]; }],
    ["a signer's minimum SVN", (m) => { m.packages["task-image"].signers[0].minSvn = 3; }],
    ["a role's packages", (m) => { m.roles.vault.packages = ["task-image"]; }],
    ["a new role", (m) => { m.roles.pipeline = { packages: ["task-image"] }; }],
    ["allowSimulation", (m) => { m.attestation.allowSimulation = true; }],
    ["allowDebug", (m) => { m.attestation.allowDebug = true; }],
    ["an accepted TCB status", (m) => { m.attestation.acceptedTcbStatuses = ["UpToDate"]; }],
    ["a limit", (m) => { m.limits.task.max.outputBytes = 4097; }],
    ["the evidence size", (m) => { m.limits.evidenceBytes = 65537; }],
    ["the registration lifetime", (m) => { m.registration.lifetimeSeconds = 3601; }],
    ["the name", (m) => { m.name = "other"; }],
  ];
  const seen = new Set([base]);
  for (const [what, change] of changes) {
    const json = fullManifest();
    change(json);
    const digest = manifestDigest(parseManifest(json));
    assert.ok(!seen.has(digest), `changing ${what} changes the digest`);
    seen.add(digest);
  }
});

test("a role's policy accepts exactly its packages' code, under the shared evidence terms", () => {
  const m = parseManifest(fullManifest());
  const task = policyForRole(m, TASK_ROLE);
  assert.deepEqual(task.measurements, [A]);
  assert.deepEqual(task.signers, [{ signer: SIGNER, productId: 1, minSvn: 2 }]);
  assert.deepEqual(task.trustedRoots, [intelSgxRootCaDer()]);
  assert.deepEqual(task.acceptedTcbStatuses, ["UpToDate", "SWHardeningNeeded"]);
  assert.equal(task.maxCollateralAgeSeconds, 3600);
  assert.deepEqual(evaluatePolicy(claims(), task), []);
  assert.match(evaluatePolicy(claims({ teeType: "TDX", measurement: B }), task).join(), /not allowed by the policy/, "the vault image is no task enclave");
  const vault = policyForRole(m, "vault");
  assert.deepEqual(evaluatePolicy(claims({ teeType: "TDX", measurement: B }), vault), []);
  assert.match(evaluatePolicy(claims(), vault).join(), /not allowed/);
  const all = policyForAllRoles(m);
  assert.deepEqual(evaluatePolicy(claims(), all), []);
  assert.deepEqual(evaluatePolicy(claims({ teeType: "TDX", measurement: B }), all), []);
  assert.throws(() => policyForRole(m, "pipeline"), (e: unknown) => e instanceof ManifestError && e.code === "MANIFEST_ROLE_UNKNOWN" && /names no role "pipeline" \(it names task, vault\)/.test(e.message));
});

test("the production manifest is the strict production policy: released images only, so today no code at all", () => {
  const m = productionManifest();
  const policy = policyForRole(m, TASK_ROLE);
  assert.deepEqual(policy.measurements, releasedEnclaveMeasurements());
  for (const field of ["trustedRoots", "allowSimulation", "simulatedRoots", "acceptedTcbStatuses", "acceptedAdvisoryIds", "allowDebug"] as const) {
    assert.deepEqual(policy[field], productionPolicy()[field], field);
  }
  assert.match(evaluatePolicy(claims(), policy).join(), /no code pinned/);
  assert.equal(manifestDigest(productionManifest()), manifestDigest(m), "deterministic");
});

test("the starter manifest parses to the production terms, and the JSON Schema covers every field", () => {
  const { manifest } = parseManifestText(starterManifestText());
  assert.deepEqual(policyForRole(manifest, TASK_ROLE).measurements, releasedEnclaveMeasurements());
  assert.equal(manifest.attestation.maxCollateralAgeSeconds, 2592000);
  const schema = manifestJsonSchema() as { additionalProperties: unknown; properties: Record<string, unknown>; required: string[] };
  assert.equal(schema.additionalProperties, false);
  for (const field of Object.keys(manifest)) assert.ok(field in schema.properties, `schema lacks ${field}`);
  assert.deepEqual(schema.required.sort(), ["roles", "version"]);
});

test("an old policy file loads as a manifest whose task role pins its code; expectedReportData says how to convert", async () => {
  const legacy = manifestFromJson({ allowSimulation: true, measurements: [A], signers: [{ signer: SIGNER }], acceptedTcbStatuses: ["UpToDate", "OutOfDate"] });
  assert.equal(legacy.convertedFromPolicyFile, true);
  assert.deepEqual(legacy.manifest.roles, { task: { packages: [CONVERTED_PACKAGE], anyCode: false } });
  assert.deepEqual(legacy.manifest.packages[CONVERTED_PACKAGE]!.measurements, [A]);
  assert.equal(legacy.manifest.attestation.allowSimulation, true);
  assert.deepEqual(legacy.manifest.attestation.acceptedTcbStatuses, ["UpToDate", "OutOfDate"]);
  assert.equal(legacy.digest, manifestDigest(legacy.manifest));
  assert.equal(manifestFromJson({ anyCode: true }).manifest.roles.task!.anyCode, true);
  assert.equal(manifestFromJson(fullManifest()).convertedFromPolicyFile, false);

  assert.throws(() => manifestFromJson({ expectedReportData: "00".repeat(64), measurements: [A] }),
    (e: unknown) => e instanceof ManifestError && e.code === "MANIFEST_LEGACY_UNCONVERTIBLE" && /--report-data/.test(e.message));
  assert.throws(() => manifestFromJson({ acceptedTcbStatuses: ["Great"] }),
    (e: unknown) => e instanceof ManifestError && e.code === "MANIFEST_INVALID" && /nor an old policy file: .*policy\.acceptedTcbStatuses\[0\]/.test(e.message));

  const dir = await mkdtemp(join(tmpdir(), "cloister-manifest-"));
  try {
    const file = join(dir, "m.jsonc");
    await writeFile(file, `// comment\n${JSON.stringify(fullManifest())}`);
    assert.equal((await loadManifestFile(file)).digest, manifestDigest(parseManifest(fullManifest())));
    await writeFile(file, "{ \"version\": 1, \"roles\": { \"task\": { \"packages\": [\"x\"] } } }");
    await assert.rejects(loadManifestFile(file), (e: unknown) => e instanceof ManifestError && e.message.startsWith(`${file}: `) && /roles\.task\.packages\[0\]/.test(e.message));
    await assert.rejects(loadManifestFile(join(dir, "missing.json")), (e: unknown) => e instanceof ManifestError && /cannot read policy manifest/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a simulated root among a manifest's production trustedRoots is refused: simulation is only ever allowed explicitly", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-manifest-sim-"));
  try {
    const root = Buffer.from(simRootDer(await loadOrCreateSimPki(dir))).toString("base64");
    assert.throws(() => parseManifest({ version: 1, roles: { task: {} }, attestation: { trustedRoots: [root] } }),
      (e: unknown) => e instanceof ManifestError && /manifest\.attestation\.trustedRoots\[0\]: is a SIMULATED vendor root/.test(e.message));
    const dev = parseManifest({ version: 1, roles: { task: {} }, attestation: { allowSimulation: true, simulatedRoots: [root] } });
    assert.deepEqual(policyForRole(dev, TASK_ROLE).simulatedRoots, [new Uint8Array(Buffer.from(root, "base64"))]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
