import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dcap from "@phala/dcap-qvl";
import { addSimPlatform, createSimPki, loadOrCreateSimPki, revokePckCertificate, simRootDer } from "../../src/attestation/sim/pki.ts";
import { SIM_ADVISORY_ID, SIM_OUTDATED_PCE_SVN, SIM_OUTDATED_TCB } from "../../src/attestation/sim/collateral.ts";
import { enclaveCodeMeasurement, SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { verifyDcapQuote } from "../../src/attestation/verify.ts";
import type { AttestationError } from "../../src/attestation/verify.ts";
import { intelSgxRootCaDer } from "../../src/attestation/dcap/intel-root.ts";
import type { DcapCollateral, Evidence } from "../../src/attestation/types.ts";

const pki = await createSimPki({ seed: "7e".repeat(32) });
const root = simRootDer(pki);
const MRENCLAVE = "c0".repeat(32);
const reportData = Uint8Array.from({ length: 64 }, (_, i) => i * 3);
const nowSecs = () => Math.floor(Date.now() / 1000);

function sgx(evidence: Evidence): { quote: Uint8Array; collateral: DcapCollateral } {
  assert.equal(evidence.teeType, "SGX");
  if (!evidence.collateral) throw new Error("expected SGX evidence with collateral");
  return { quote: evidence.quote, collateral: evidence.collateral };
}

const verifyWithSimRoot = (quote: Uint8Array, collateral: DcapCollateral, now?: number) =>
  verifyDcapQuote(quote, collateral, { now, trustedRoots: [intelSgxRootCaDer()], simulatedRoots: [root] });

test("@phala/dcap-qvl verifies a simulated quote against the simulated root: UpToDate, right MRENCLAVE and report_data", async () => {
  const provider = new SimulatedProvider({ pki, mrEnclave: MRENCLAVE });
  const { quote, collateral } = sgx(await provider.attest(reportData));
  const verified = dcap.QuoteVerifier.newWithRootCa(Buffer.from(root)).verify(quote, collateral, nowSecs());
  assert.equal(verified.status, "UpToDate");
  assert.deepEqual(verified.advisory_ids, []);
  const report = verified.report.asSgx()!;
  assert.equal(Buffer.from(report.mrEnclave).toString("hex"), MRENCLAVE);
  assert.deepEqual(new Uint8Array(report.reportData), reportData);
  assert.throws(() => dcap.verify(quote, collateral, nowSecs()), "Intel's root does not vouch for it");
});

test("Cloister's verifier accepts it as simulated, with the claims the provider set", async () => {
  const provider = new SimulatedProvider({ pki, mrEnclave: MRENCLAVE, mrSigner: "d1".repeat(32), isvProdId: 4, isvSvn: 9 });
  const { quote, collateral } = sgx(await provider.attest(reportData));
  const claims = await verifyWithSimRoot(quote, collateral);
  assert.equal(claims.simulated, true);
  assert.equal(claims.teeType, "SGX");
  assert.equal(claims.quoteVersion, 3);
  assert.equal(claims.tcbStatus, "UpToDate");
  assert.equal(claims.measurement, MRENCLAVE);
  assert.equal(claims.signer, "d1".repeat(32));
  assert.equal(claims.productId, 4);
  assert.equal(claims.svn, 9);
  assert.equal(claims.debug, false);
  assert.equal(claims.reportData, Buffer.from(reportData).toString("hex"));
  assert.equal(await provider.measurement(), MRENCLAVE);
});

test("without the simulated root the quote is not trusted", async () => {
  const { quote, collateral } = sgx(await new SimulatedProvider({ pki, mrEnclave: MRENCLAVE }).attest(reportData));
  await assert.rejects(verifyDcapQuote(quote, collateral, { trustedRoots: [intelSgxRootCaDer()] }), (e: AttestationError) => /ROOT|CHAIN/.test(e.code));
  const other = await createSimPki({ seed: "7f".repeat(32) });
  await assert.rejects(verifyDcapQuote(quote, collateral, { trustedRoots: [], simulatedRoots: [simRootDer(other)] }));
});

test("a flipped report_data byte is refused by both verifiers", async () => {
  const { quote, collateral } = sgx(await new SimulatedProvider({ pki, mrEnclave: MRENCLAVE }).attest(reportData));
  const tampered = new Uint8Array(quote);
  tampered[48 + 320 + 63]! ^= 0x01;
  await assert.rejects(verifyWithSimRoot(tampered, collateral), (e: AttestationError) => e.code === "QUOTE_SIGNATURE_INVALID");
  assert.throws(() => dcap.QuoteVerifier.newWithRootCa(Buffer.from(root)).verify(tampered, collateral, nowSecs()), /signature/i);
});

test("a quote from a revoked PCK certificate is refused", async () => {
  const local = await createSimPki({ seed: "7e".repeat(32), platforms: [{ name: "good" }, { name: "revoked" }] });
  await revokePckCertificate(local, local.platforms[1]!.pckSerial);
  const bad = sgx(await new SimulatedProvider({ pki: local, mrEnclave: MRENCLAVE, platform: "revoked" }).attest(reportData));
  await assert.rejects(verifyWithSimRoot(bad.quote, bad.collateral), (e: AttestationError) => e.code === "CERT_REVOKED");
  assert.throws(() => dcap.QuoteVerifier.newWithRootCa(Buffer.from(root)).verify(bad.quote, bad.collateral, nowSecs()), /revoked/i);
  const good = sgx(await new SimulatedProvider({ pki: local, mrEnclave: MRENCLAVE, platform: "good" }).attest(reportData));
  assert.equal((await verifyWithSimRoot(good.quote, good.collateral)).tcbStatus, "UpToDate");
});

test("a debug enclave is flagged (Cloister) or refused (dcap-qvl)", async () => {
  const { quote, collateral } = sgx(await new SimulatedProvider({ pki, mrEnclave: MRENCLAVE, debug: true }).attest(reportData));
  assert.equal((await verifyWithSimRoot(quote, collateral)).debug, true);
  assert.throws(() => dcap.QuoteVerifier.newWithRootCa(Buffer.from(root)).verify(quote, collateral, nowSecs()), /debug/i);
});

test("a platform at the older TCB matches the OutOfDate level with its advisory", async () => {
  const local = await createSimPki({ seed: "7e".repeat(32) });
  await addSimPlatform(local, { name: "old", tcbComponents: [...SIM_OUTDATED_TCB], pceSvn: SIM_OUTDATED_PCE_SVN });
  const { quote, collateral } = sgx(await new SimulatedProvider({ pki: local, mrEnclave: MRENCLAVE, platform: "old" }).attest(reportData));
  const claims = await verifyWithSimRoot(quote, collateral);
  assert.equal(claims.tcbStatus, "OutOfDate");
  assert.deepEqual(claims.advisoryIds, [SIM_ADVISORY_ID]);
});

test("collateral is valid around its issue time and expires after 30 days", async () => {
  const issuedAt = new Date("2031-05-01T12:00:00Z");
  const provider = new SimulatedProvider({ pki, mrEnclave: MRENCLAVE, now: () => issuedAt });
  const { quote, collateral } = sgx(await provider.attest(reportData));
  const at = issuedAt.getTime() / 1000;
  assert.equal((await verifyWithSimRoot(quote, collateral, at + 29 * 86400)).tcbStatus, "UpToDate");
  await assert.rejects(verifyWithSimRoot(quote, collateral, at + 31 * 86400), (e: AttestationError) => /EXPIRED/.test(e.code));
  await assert.rejects(verifyWithSimRoot(quote, collateral, at - 2 * 3600), (e: AttestationError) => /NOT_YET_VALID/.test(e.code));
  assert.match(JSON.parse(collateral.tcb_info).nextUpdate, /^2031-05-31T12:00:00Z$/);
});

test("the provider says SIMULATED, loads the PKI from a directory, and checks its inputs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-sim-provider-"));
  try {
    const provider = new SimulatedProvider({ pkiDir: dir, mrEnclave: MRENCLAVE });
    assert.equal(provider.name, "sim");
    assert.equal(provider.simulated, true);
    assert.match(provider.describe(), /SIMULATED/);
    const { quote, collateral } = sgx(await provider.attest(reportData));
    const shared = await loadOrCreateSimPki(dir);
    const claims = await verifyDcapQuote(quote, collateral, { trustedRoots: [], simulatedRoots: [simRootDer(shared)] });
    assert.equal(claims.simulated, true);
    await assert.rejects(provider.attest(new Uint8Array(10)), { code: "SIM_QUOTE_BAD_INPUT" });
    assert.throws(() => new SimulatedProvider({ pkiDir: dir, mrEnclave: "abc" }), { code: "SIM_QUOTE_BAD_INPUT" });
    assert.throws(() => new SimulatedProvider({ mrEnclave: MRENCLAVE }), { code: "SIM_PROVIDER_NO_PKI" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("enclaveCodeMeasurement is canonical over paths and contents", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-measure-"));
  try {
    await mkdir(join(dir, "lib"));
    await writeFile(join(dir, "main.ts"), "export const a = 1;\n");
    await writeFile(join(dir, "lib", "util.ts"), "export const b = 2;\n");
    const m = enclaveCodeMeasurement(["main.ts", "lib/util.ts"], dir);
    assert.match(m, /^[0-9a-f]{64}$/);
    assert.equal(enclaveCodeMeasurement(["lib/util.ts", join(dir, "main.ts")], dir), m, "order and absolute paths do not matter");
    await writeFile(join(dir, "main.ts"), "export const a = 2;\n");
    const changed = enclaveCodeMeasurement(["main.ts", "lib/util.ts"], dir);
    assert.notEqual(changed, m);
    await mkdir(join(dir, "x"));
    await writeFile(join(dir, "x", "util.ts"), "export const b = 2;\n");
    assert.notEqual(enclaveCodeMeasurement(["main.ts", "x/util.ts"], dir), changed, "paths are measured, not only contents");
    assert.throws(() => enclaveCodeMeasurement(["main.ts", "main.ts"], dir), { code: "MEASUREMENT_DUPLICATE_FILE" });
    assert.throws(() => enclaveCodeMeasurement(["../etc"], dir), { code: "MEASUREMENT_OUTSIDE_BASE" });
    assert.throws(() => enclaveCodeMeasurement([], dir), { code: "MEASUREMENT_NO_FILES" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
