import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, verify, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import dcap from "@phala/dcap-qvl";
import { createSimPki } from "../../src/attestation/sim/pki.ts";
import type { SimQuoteError } from "../../src/attestation/sim/quote.ts";
import { buildSgxQuoteV3, QE_VENDOR_ID_INTEL, SIM_QE } from "../../src/attestation/sim/quote.ts";

const pki = await createSimPki({ seed: "3c".repeat(32) });
const platform = pki.platforms[0]!;
const realQuote = await readFile(new URL("../../../shared/testdata/attestation/sgx_v3_quote.bin", import.meta.url));
const reportData = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
const input = { mrEnclave: "11".repeat(32), mrSigner: "22".repeat(32), isvProdId: 7, isvSvn: 3, reportData };
const quote = Buffer.from(buildSgxQuoteV3(input, pki, platform));

/** Independent walk of the v3 layout at Intel's offsets. */
function layout(q: Buffer) {
  const sigLen = q.readUInt32LE(432);
  const authLen = q.readUInt16LE(1012);
  const certAt = 1014 + authLen;
  return {
    version: q.readUInt16LE(0),
    attKeyType: q.readUInt16LE(2),
    teeType: q.readUInt32LE(4),
    vendorId: q.subarray(12, 28).toString("hex"),
    sigLenMatches: sigLen === q.length - 436,
    certType: q.readUInt16LE(certAt),
    certSizeMatches: q.readUInt32LE(certAt + 2) === q.length - certAt - 6,
    chainEndsWithNul: q[q.length - 1] === 0,
    signature: q.subarray(436, 500),
    attestationKey: q.subarray(500, 564),
    qeReport: q.subarray(564, 948),
    qeReportSignature: q.subarray(948, 1012),
    qeAuthData: q.subarray(1014, 1014 + authLen),
    chain: q.subarray(certAt + 6, q.length - 1).toString("utf8"),
  };
}

function p256(raw: Buffer) {
  return createPublicKey({ key: { kty: "EC", crv: "P-256", x: raw.subarray(0, 32).toString("base64url"), y: raw.subarray(32).toString("base64url") }, format: "jwk" });
}

test("the simulated quote has the same v3 layout as a real Intel quote", () => {
  const sim = layout(quote);
  const real = layout(realQuote);
  for (const field of ["version", "attKeyType", "teeType", "vendorId", "sigLenMatches", "certType", "certSizeMatches", "chainEndsWithNul"] as const) {
    assert.deepEqual(sim[field], real[field], field);
  }
  assert.equal(sim.vendorId, QE_VENDOR_ID_INTEL);
  assert.equal(sim.version, 3);
  assert.equal(sim.certType, 5);
});

test("report body fields sit at sgx_report_body_t offsets", () => {
  const body = quote.subarray(48, 432);
  assert.deepEqual([...body.subarray(0, 16)], platform.tcbComponents);
  assert.equal(body.subarray(64, 96).toString("hex"), input.mrEnclave);
  assert.equal(body.subarray(128, 160).toString("hex"), input.mrSigner);
  assert.equal(body.readUInt16LE(256), 7);
  assert.equal(body.readUInt16LE(258), 3);
  assert.deepEqual(new Uint8Array(body.subarray(320, 384)), reportData);
  assert.equal(body[48]! & 0x02, 0, "not a debug enclave");
  const parsed = dcap.Quote.parse(quote).report.asSgx()!;
  assert.equal(Buffer.from(parsed.mrEnclave).toString("hex"), input.mrEnclave);
  assert.deepEqual(new Uint8Array(parsed.reportData), reportData);
  assert.equal(parsed.isvProdId, 7);
});

test("signatures and the attestation-key binding verify", () => {
  const q = layout(quote);
  assert.ok(verify("sha256", quote.subarray(0, 432), { key: p256(q.attestationKey), dsaEncoding: "ieee-p1363" }, q.signature));
  const leaf = new X509Certificate(dcap.utils.extractCerts(Buffer.from(q.chain))[0]!);
  assert.ok(verify("sha256", q.qeReport, { key: leaf.publicKey, dsaEncoding: "ieee-p1363" }, q.qeReportSignature));
  const binding = createHash("sha256").update(q.attestationKey).update(q.qeAuthData).digest();
  assert.deepEqual(q.qeReport.subarray(320, 352), binding);
  assert.ok(q.qeReport.subarray(352, 384).every((b) => b === 0));
  assert.deepEqual(new Uint8Array(q.qeReport.subarray(128, 160)), SIM_QE.mrSigner);
  assert.equal(q.qeReport.readUInt16LE(256), SIM_QE.isvProdId);
  const flipped = Buffer.from(quote);
  flipped[431]! ^= 1;
  assert.equal(verify("sha256", flipped.subarray(0, 432), { key: p256(q.attestationKey), dsaEncoding: "ieee-p1363" }, q.signature), false);
});

test("debug enclaves get ATTRIBUTES.DEBUG; bad inputs are refused with typed errors", () => {
  const debug = buildSgxQuoteV3({ ...input, debug: true }, pki, platform);
  assert.equal(debug[48 + 48]! & 0x02, 0x02);
  const bad = (override: object) => () => buildSgxQuoteV3({ ...input, ...override }, pki, platform);
  const isBadInput = (e: SimQuoteError) => e.code === "SIM_QUOTE_BAD_INPUT";
  assert.throws(bad({ reportData: new Uint8Array(32) }), isBadInput);
  assert.throws(bad({ mrEnclave: "zz" }), isBadInput);
  assert.throws(bad({ isvSvn: 70000 }), isBadInput);
  assert.throws(bad({ attributes: new Uint8Array(3) }), isBadInput);
});
