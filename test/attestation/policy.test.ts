import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluatePolicy, parsePolicy, productionPolicy, stripJsonComments, type Policy } from "../../src/attestation/policy.ts";
import { loadManifestFile, ManifestError, policyForRole } from "../../src/attestation/manifest/index.ts";
import { AttestationError } from "../../src/attestation/dcap/errors.ts";
import { releasedEnclaveMeasurements } from "../../src/attestation/releases.ts";
import { intelSgxRootCaDer } from "../../src/attestation/dcap/intel-root.ts";
import { verifyEvidence } from "../../src/attestation/verify.ts";
import type { Claims } from "../../src/attestation/types.ts";
import { caseNamed, vectorBytes, vectorCollateral } from "./dcap-helpers.ts";

const NOW = 1_750_000_000;

function claims(over: Partial<Claims> = {}): Claims {
  return {
    teeType: "SGX",
    quoteVersion: 3,
    measurement: "aa".repeat(32),
    signer: "bb".repeat(32),
    productId: 1,
    svn: 3,
    reportData: "00".repeat(64),
    debug: false,
    simulated: false,
    tcbStatus: "UpToDate",
    advisoryIds: [],
    extra: { collateral: { tcbInfoIssueDate: NOW - 100, qeIdentityIssueDate: NOW - 50 } },
    ...over,
  };
}

function policyError(json: unknown): string {
  try {
    parsePolicy(json);
  } catch (e) {
    assert.ok(e instanceof AttestationError);
    assert.equal(e.code, "POLICY_INVALID");
    return e.message;
  }
  assert.fail("policy was accepted");
}

test("the production policy accepts authentic UpToDate evidence of pinned code and nothing weaker", () => {
  const p: Policy = { ...productionPolicy(), measurements: ["aa".repeat(32)] };
  assert.deepEqual(evaluatePolicy(claims(), p, { now: NOW }), []);
  assert.match(evaluatePolicy(claims({ simulated: true }), p).join(), /SIMULATED/);
  assert.match(evaluatePolicy(claims({ debug: true }), p).join(), /debug/);
  assert.match(evaluatePolicy(claims({ tcbStatus: "SWHardeningNeeded" }), p).join(), /SWHardeningNeeded is not accepted/);
  assert.match(evaluatePolicy(claims({ tcbStatus: undefined }), p).join(), /no TCB status/);
  assert.match(evaluatePolicy(claims({ advisoryIds: ["INTEL-SA-00615"] }), p).join(), /INTEL-SA-00615/);
});

test("measurements and signer rules pin the code", () => {
  const p: Policy = { ...productionPolicy(), measurements: ["cc".repeat(32)], signers: [{ signer: "bb".repeat(32), productId: 1, minSvn: 3 }] };
  assert.deepEqual(evaluatePolicy(claims(), p), []);
  assert.deepEqual(evaluatePolicy(claims({ measurement: "cc".repeat(32), signer: "00".repeat(32) }), p), []);
  assert.match(evaluatePolicy(claims({ svn: 2 }), p).join(), /not allowed/);
  assert.match(evaluatePolicy(claims({ productId: 2 }), p).join(), /not allowed/);
  assert.match(evaluatePolicy(claims({ signer: "dd".repeat(32) }), p).join(), /not allowed/);
});

test("a policy that pins no code accepts nothing unless it says anyCode (issue 10, finding 5)", () => {
  assert.deepEqual(productionPolicy().measurements, releasedEnclaveMeasurements(), "the strict default pins Cloister's released enclave images");
  assert.deepEqual(releasedEnclaveMeasurements(), [], "no hardware image is released yet");
  assert.match(evaluatePolicy(claims(), productionPolicy()).join(), /no code pinned.*--measurement/);
  assert.match(evaluatePolicy(claims(), { ...productionPolicy(), measurements: undefined, signers: [] }).join(), /no code pinned/);
  assert.match(evaluatePolicy(claims(), parsePolicy({})).join(), /no code pinned/);
  assert.deepEqual(evaluatePolicy(claims(), parsePolicy({ anyCode: true })), []);
  assert.deepEqual(parsePolicy({ measurements: ["cloister-released"] }).measurements, releasedEnclaveMeasurements());
  assert.match(policyError({ anyCode: true, measurements: ["aa".repeat(32)] }), /policy\.anyCode: contradicts/);
});

test("freshness, TEE types and collateral age", () => {
  const p: Policy = { ...productionPolicy(), measurements: ["aa".repeat(32)] };
  const rd = new Uint8Array(64).fill(7);
  assert.match(evaluatePolicy(claims(), p, { expectedReportData: rd }).join(), /stale nonce/);
  assert.deepEqual(evaluatePolicy(claims({ reportData: "07".repeat(64) }), p, { expectedReportData: rd }), []);
  assert.match(evaluatePolicy(claims(), { ...p, expectedReportData: "01".repeat(64) }).join(), /differs from the expected/);
  assert.match(evaluatePolicy(claims(), { ...p, teeTypes: ["TDX"] }).join(), /TEE type SGX/);
  assert.deepEqual(evaluatePolicy(claims(), { ...p, maxCollateralAgeSeconds: 100 }, { now: NOW }), []);
  assert.match(evaluatePolicy(claims(), { ...p, maxCollateralAgeSeconds: 99 }, { now: NOW }).join(), /maxCollateralAgeSeconds/);
  assert.deepEqual(evaluatePolicy(claims({ simulated: true }), { ...p, allowSimulation: true }), []);
});

test("parsePolicy fills strict defaults", () => {
  const p = parsePolicy({});
  assert.deepEqual(p.trustedRoots, [intelSgxRootCaDer()]);
  assert.equal(p.allowSimulation, false);
  assert.equal(p.allowDebug, false);
  assert.deepEqual(p.acceptedTcbStatuses, ["UpToDate"]);
  assert.deepEqual(p.acceptedAdvisoryIds, []);
  assert.equal(p.measurements, undefined);
});

test("parsePolicy names the offending field", () => {
  assert.match(policyError({ acceptedTcbStatuses: ["UpToDate", "Great"] }), /policy\.acceptedTcbStatuses\[1\]: "Great" is not a TCB status/);
  assert.match(policyError({ allowDebug: "yes" }), /policy\.allowDebug:/);
  assert.match(policyError({ measurements: ["xyz"] }), /policy\.measurements\[0\]: "xyz" is not/);
  assert.match(policyError({ signers: [{ signer: "bb".repeat(32), minSvn: -1 }] }), /policy\.signers\[0\]\.minSvn/);
  assert.match(policyError({ trustedRoots: ["not a cert"] }), /policy\.trustedRoots\[0\]/);
  assert.match(policyError({ allowDebg: true }), /unknown field "allowDebg"/);
  assert.match(policyError({ teeTypes: ["SNP"] }), /policy\.teeTypes\[0\]: "SNP" is not a TEE type/);
  assert.match(policyError([]), /policy:/);
});

test("policy roots accept the built-in name, PEM and base64 DER", () => {
  const der = intelSgxRootCaDer();
  const b64 = Buffer.from(der).toString("base64");
  const pem = `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`;
  const p = parsePolicy({ trustedRoots: ["intel-sgx-root-ca", pem], allowSimulation: true, simulatedRoots: [b64] });
  assert.deepEqual(p.trustedRoots, [der, der]);
  assert.deepEqual(p.simulatedRoots, [der]);
});

test("stripJsonComments leaves strings alone and drops trailing commas", () => {
  assert.equal(stripJsonComments('{"a": "x // not a comment", /* c */ "b": [1,],}'), '{"a": "x // not a comment",  "b": [1]}');
});

test("an old JSONC policy file loads as a manifest, and reports the file and the policy field on errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-policy-"));
  try {
    const good = join(dir, "good.jsonc");
    await writeFile(good, '// strict\n{ "allowDebug": false, /* ok */ "acceptedTcbStatuses": ["UpToDate", "SWHardeningNeeded"], }\n');
    const loaded = await loadManifestFile(good);
    assert.equal(loaded.convertedFromPolicyFile, true);
    assert.deepEqual(policyForRole(loaded.manifest, "task").acceptedTcbStatuses, ["UpToDate", "SWHardeningNeeded"]);
    const bad = join(dir, "bad.json");
    await writeFile(bad, '{ "acceptedTcbStatuses": ["Great"] }');
    await assert.rejects(loadManifestFile(bad), (e: unknown) => e instanceof ManifestError && e.message.includes(bad) && e.message.includes("policy.acceptedTcbStatuses[0]"));
    await assert.rejects(loadManifestFile(join(dir, "missing.json")), (e: unknown) => e instanceof ManifestError && e.code === "MANIFEST_INVALID");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("verifyEvidence applies the policy to real evidence", async () => {
  const c = caseNamed("tdx_v4_ok");
  const evidence = { teeType: "TDX" as const, quote: vectorBytes(c.quote_file), collateral: vectorCollateral(c.collateral_file) };
  const pinned = parsePolicy({ measurements: [c.expect.mr_td] });
  assert.equal((await verifyEvidence(evidence, { policy: pinned, now: c.now_secs })).accepted, true);
  const other = parsePolicy({ measurements: ["00".repeat(48)] });
  const refused = await verifyEvidence(evidence, { policy: other, now: c.now_secs });
  assert.equal(refused.ok, true);
  assert.equal(refused.accepted, false);
  assert.match(refused.reasons.join(), /not allowed/);
  const nonce = await verifyEvidence(evidence, { policy: productionPolicy(), now: c.now_secs, expectedReportData: new Uint8Array(64) });
  assert.equal(nonce.accepted, false);
});
