import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyEvidence, verifyDcapQuote, AttestationError } from "../../src/attestation/verify.ts";
import { productionPolicy, type Policy } from "../../src/attestation/policy.ts";
import { INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCaDer } from "../../src/attestation/dcap/intel-root.ts";
import { createHash } from "node:crypto";
import { cases, intelRoot, vectorBytes, vectorCollateral, type DcapCase } from "./dcap-helpers.ts";
import type { Claims } from "../../src/attestation/types.ts";

function checkClaims(claims: Claims, c: DcapCase): void {
  const e = c.expect;
  assert.equal(claims.teeType, e.tee_type);
  assert.equal(claims.quoteVersion, e.quote_version);
  assert.equal(claims.reportData, e.report_data);
  assert.equal(claims.fmspc, e.fmspc);
  assert.equal(claims.extra?.pckCa, e.pck_ca);
  if (e.tee_type === "SGX") {
    assert.equal(claims.measurement, e.mr_enclave);
    assert.equal(claims.signer, e.mr_signer);
    assert.equal(claims.productId, e.isv_prod_id);
    assert.equal(claims.svn, e.isv_svn);
  } else {
    assert.equal(claims.measurement, e.mr_td);
    assert.equal(claims.extra?.tdReportType, e.td_report_type);
  }
}

test("the built-in Intel root is the test vectors' root", () => {
  assert.deepEqual(intelSgxRootCaDer(), intelRoot());
  assert.equal(createHash("sha256").update(intelSgxRootCaDer()).digest("hex"), INTEL_SGX_ROOT_CA_SHA256);
});

for (const c of cases()) {
  test(`case ${c.name}: verifyEvidence gives the expected result`, async () => {
    const evidence = { teeType: c.expect.tee_type, quote: vectorBytes(c.quote_file), collateral: vectorCollateral(c.collateral_file) };
    // The production policy with this quote's code pinned (it pins only Cloister's released images by default).
    const measurement = (c.expect.tee_type === "SGX" ? c.expect.mr_enclave : c.expect.mr_td)!;
    const pinned: Policy = { ...productionPolicy(), measurements: [measurement] };
    const strict = await verifyEvidence(evidence, { policy: pinned, now: c.now_secs });
    assert.equal(strict.ok, c.expect.ok, strict.error);
    assert.ok(strict.claims, "claims are filled whenever the quote parses");
    checkClaims(strict.claims, c);
    if (!c.expect.ok) {
      assert.equal(strict.accepted, false);
      assert.match(strict.error ?? "", /^[A-Z_]+: /);
      assert.equal(strict.claims.tcbStatus, undefined);
      return;
    }
    assert.equal(strict.claims.tcbStatus, c.expect.tcb_status);
    assert.deepEqual([...strict.claims.advisoryIds].sort(), [...(c.expect.advisory_ids ?? [])].sort());
    assert.equal(strict.claims.simulated, false);
    const upToDate = c.expect.tcb_status === "UpToDate";
    assert.equal(strict.accepted, upToDate, strict.reasons.join("; "));
    if (!upToDate) {
      assert.ok(strict.reasons.some((r) => r.includes(c.expect.tcb_status!)));
      const lenient: Policy = { ...pinned, acceptedTcbStatuses: ["UpToDate", c.expect.tcb_status as never], acceptedAdvisoryIds: c.expect.advisory_ids ?? [] };
      const res = await verifyEvidence(evidence, { policy: lenient, now: c.now_secs });
      assert.equal(res.accepted, true, res.reasons.join("; "));
    }
    const unpinned = await verifyEvidence(evidence, { policy: productionPolicy(), now: c.now_secs });
    assert.equal(unpinned.ok, true);
    assert.equal(unpinned.accepted, false, "the production policy pins only Cloister's released enclaves");
    assert.ok(unpinned.reasons.some((r) => /no code pinned/.test(r)), unpinned.reasons.join("; "));
  });

  test(`case ${c.name}: verifyDcapQuote ${c.expect.ok ? "returns claims" : "throws AttestationError"}`, async () => {
    const run = verifyDcapQuote(vectorBytes(c.quote_file), vectorCollateral(c.collateral_file), { now: c.now_secs, trustedRoots: [intelRoot()] });
    if (c.expect.ok) {
      const claims = await run;
      checkClaims(claims, c);
      assert.equal(claims.tcbStatus, c.expect.tcb_status);
    } else {
      await assert.rejects(run, (e: unknown) => e instanceof AttestationError);
    }
  });
}

test("expected failure codes for the negative cases", async () => {
  const codes: Record<string, RegExp> = {
    sgx_v3_tampered_report_data: /^QUOTE_SIGNATURE_INVALID$/,
    tdx_v4_tampered_tcb_info: /^COLLATERAL_SIGNATURE_INVALID$/,
    sgx_v3_collateral_expired: /EXPIRED$/,
    tdx_v4_collateral_not_yet_valid: /NOT_YET_VALID$/,
    tdx_v5_tcb_level_unmatched: /^TCB_LEVEL_UNMATCHED$/,
  };
  for (const c of cases().filter((x) => !x.expect.ok)) {
    await assert.rejects(
      verifyDcapQuote(vectorBytes(c.quote_file), vectorCollateral(c.collateral_file), { now: c.now_secs, trustedRoots: [intelRoot()] }),
      (e: unknown) => e instanceof AttestationError && codes[c.name]!.test(e.code),
      c.name,
    );
  }
});

test("a quote chained to Intel's root is refused when only another root is trusted", async () => {
  const c = cases()[0]!;
  const other = vectorBytes("sevsnp_milan_vcek.der");
  await assert.rejects(
    verifyDcapQuote(vectorBytes(c.quote_file), vectorCollateral(c.collateral_file), { now: c.now_secs, trustedRoots: [other] }),
    (e: unknown) => e instanceof AttestationError && e.code === "UNTRUSTED_ROOT",
  );
});

test("every ok case verifies at both ends of its validity window and fails just outside", async () => {
  for (const c of cases().filter((x) => x.expect.ok)) {
    const run = (now: number) => verifyDcapQuote(vectorBytes(c.quote_file), vectorCollateral(c.collateral_file), { now, trustedRoots: [intelRoot()] });
    await run(c.validity_window.not_before);
    await run(c.validity_window.not_after);
    await assert.rejects(run(c.validity_window.not_before - 1), AttestationError);
    await assert.rejects(run(c.validity_window.not_after + 1), AttestationError);
  }
});

test("evidence labelled with the wrong TEE type is refused", async () => {
  const c = cases()[0]!;
  const res = await verifyEvidence({ teeType: "TDX", quote: vectorBytes(c.quote_file), collateral: vectorCollateral(c.collateral_file) }, { policy: productionPolicy(), now: c.now_secs });
  assert.equal(res.ok, false);
  assert.match(res.error ?? "", /labelled TDX/);
});

test("missing collateral is a typed failure, with claims from the quote", async () => {
  const c = cases()[0]!;
  const res = await verifyEvidence({ teeType: "SGX", quote: vectorBytes(c.quote_file) }, { policy: productionPolicy(), now: c.now_secs });
  assert.equal(res.ok, false);
  assert.match(res.error ?? "", /^COLLATERAL_MISSING/);
  assert.equal(res.claims?.measurement, c.expect.mr_enclave);
});
