/**
 * Simulated evidence is recognized as simulated from the evidence itself,
 * whatever root list a policy puts the simulated root in (issue 10, finding 14).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { AttestationError } from "../../src/attestation/dcap/errors.ts";
import { parseCert } from "../../src/attestation/dcap/cert.ts";
import { parseQuote } from "../../src/attestation/dcap/quote.ts";
import { isSimulatedCert, isSimulatedQuoteHeader } from "../../src/attestation/dcap/simulated-marks.ts";
import { intelSgxRootCaDer } from "../../src/attestation/dcap/intel-root.ts";
import { parsePolicy, productionPolicy, type Policy } from "../../src/attestation/policy.ts";
import { createSimPki, simRootDer, simRootPem } from "../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { verifyEvidence } from "../../src/attestation/verify.ts";
import { caseNamed, vectorBytes } from "./dcap-helpers.ts";

const pki = await createSimPki({ seed: "5e".repeat(32) });
const MRENCLAVE = "c1".repeat(32);
const evidence = await new SimulatedProvider({ pki, mrEnclave: MRENCLAVE }).attest(new Uint8Array(64));

test("every certificate of the simulated PKI and every simulated quote carries the SIMULATED mark", () => {
  for (const cert of [pki.root.cert, pki.pckCa.cert, pki.tcbSigning.cert, pki.platforms[0]!.pckCert]) {
    assert.ok(isSimulatedCert(parseCert(new Uint8Array(cert.rawData), cert.subject)), `${cert.subject} is marked`);
  }
  assert.equal(isSimulatedCert(parseCert(intelSgxRootCaDer(), "Intel root")), false, "Intel's root is not marked");
  assert.ok(evidence.teeType === "SGX");
  assert.ok(isSimulatedQuoteHeader(parseQuote(evidence.quote).header.userData));
  const real = parseQuote(vectorBytes(caseNamed("sgx_v3_ok").quote_file));
  assert.equal(isSimulatedQuoteHeader(real.header.userData), false, "a real Intel quote is not marked");
});

test("a simulated root listed in trustedRoots still yields SIMULATED evidence, refused without allowSimulation", async () => {
  const trusting: Policy = { ...productionPolicy(), trustedRoots: [simRootDer(pki)], measurements: [MRENCLAVE] };
  const result = await verifyEvidence(evidence, { policy: trusting });
  assert.equal(result.ok, true, result.error);
  assert.equal(result.claims?.simulated, true, "simulated is decided by the evidence, not by the root list that matched");
  assert.equal(result.accepted, false);
  assert.match(result.reasons.join("; "), /SIMULATED/);
  const allowed = await verifyEvidence(evidence, { policy: { ...trusting, allowSimulation: true } });
  assert.equal(allowed.accepted, true, allowed.reasons.join("; "));
  assert.equal(allowed.claims?.simulated, true);
});

test("a policy file that lists a simulated root in trustedRoots is refused at load, pointing to simulatedRoots", () => {
  for (const root of [simRootPem(pki), Buffer.from(simRootDer(pki)).toString("base64")]) {
    assert.throws(
      () => parsePolicy({ trustedRoots: [root], measurements: [MRENCLAVE] }),
      (e: unknown) => e instanceof AttestationError && e.code === "POLICY_INVALID" && /policy\.trustedRoots\[0\].*SIMULATED.*simulatedRoots.*allowSimulation/.test(e.message),
    );
  }
  const ok = parsePolicy({ allowSimulation: true, simulatedRoots: [simRootPem(pki)], measurements: [MRENCLAVE] });
  assert.equal(ok.simulatedRoots.length, 1);
});
