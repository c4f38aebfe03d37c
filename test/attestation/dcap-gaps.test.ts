/**
 * The four gaps of @phala/dcap-qvl that Cloister's verifier must not share,
 * plus revocation and identity checks, shown on the real Intel vectors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyDcapQuote, AttestationError } from "../../src/attestation/verify.ts";
import { parseCrl, checkNotRevoked } from "../../src/attestation/dcap/crl.ts";
import { parsePemChain } from "../../src/attestation/dcap/cert.ts";
import { embeddedPckChain, parseQuote, type TdReport } from "../../src/attestation/dcap/quote.ts";
import { parsePckExtensions } from "../../src/attestation/dcap/pck-extensions.ts";
import { parseTcbInfo } from "../../src/attestation/dcap/collateral-format.ts";
import { convergeStatus, evaluateTdxModule, matchTcbLevel } from "../../src/attestation/dcap/tcb.ts";
import { caseNamed, intelRoot, vectorBytes, vectorCollateral } from "./dcap-helpers.ts";
import type { DcapCollateral } from "../../src/attestation/types.ts";

const sgx = caseNamed("sgx_v3_ok");
const tdx = caseNamed("tdx_v4_ok");

function verify(c: typeof sgx, collateral: DcapCollateral, now = c.now_secs) {
  return verifyDcapQuote(vectorBytes(c.quote_file), collateral, { now, trustedRoots: [intelRoot()] });
}

function rejectsWith(code: string | RegExp, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    if (typeof code === "string") assert.equal(e.code, code, e.message);
    else assert.match(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

test("gap 1: a PCK CRL whose signature is broken is refused", async () => {
  const collateral = vectorCollateral(tdx.collateral_file);
  const crl = Buffer.from(collateral.pck_crl, "hex");
  crl[crl.length - 1]! ^= 0x01; // last byte of the ECDSA signature's s
  await verify(tdx, vectorCollateral(tdx.collateral_file));
  await assert.rejects(verify(tdx, { ...collateral, pck_crl: crl.toString("hex") }), rejectsWith("CRL_INVALID", /signature/));
});

test("gap 1: a root CA CRL whose signature is broken is refused", async () => {
  const collateral = vectorCollateral(sgx.collateral_file);
  const crl = Buffer.from(collateral.root_ca_crl, "hex");
  crl[crl.length - 1]! ^= 0x01;
  await assert.rejects(verify(sgx, { ...collateral, root_ca_crl: crl.toString("hex") }), rejectsWith("CRL_INVALID", /signature/));
});

test("gap 1: an unparsable CRL is refused, not ignored", async () => {
  const collateral = vectorCollateral(sgx.collateral_file);
  await assert.rejects(verify(sgx, { ...collateral, pck_crl: collateral.pck_crl.slice(0, 200) }), rejectsWith("CRL_INVALID"));
});

test("gap 2: a PCK CRL outside its thisUpdate..nextUpdate window is refused", async () => {
  const collateral = vectorCollateral(tdx.collateral_file);
  const crl = parseCrl(new Uint8Array(Buffer.from(collateral.pck_crl, "hex")), "PCK CRL");
  // Just past the PCK CRL's nextUpdate, while TCB info and QE identity are still valid.
  const tcbNext = Date.parse(JSON.parse(collateral.tcb_info).nextUpdate) / 1000;
  const qeNext = Date.parse(JSON.parse(collateral.qe_identity).nextUpdate) / 1000;
  const after = crl.nextUpdate! + 60;
  assert.ok(after < tcbNext && after < qeNext, "the vector must leave room for this test");
  await verify(tdx, collateral, crl.nextUpdate!);
  await assert.rejects(verify(tdx, collateral, after), rejectsWith("CRL_EXPIRED", /PCK CRL/));
});

test("gap 3: the PPID is parsed to its 16 bytes", async () => {
  for (const c of [sgx, tdx]) {
    const claims = await verify(c, vectorCollateral(c.collateral_file));
    const ppid = claims.extra?.ppid as string;
    assert.match(ppid, /^[0-9a-f]{32}$/);
    // Independent check: the DER of the PCK certificate holds OID ...13.1.1 then OCTET STRING(16) = PPID.
    const pck = parsePemChain(embeddedPckChain(parseQuote(vectorBytes(c.quote_file)))!, "chain")[0]!;
    const der = Buffer.from(pck.der);
    const marker = Buffer.from("060a2a864886f84d010d0101" + "0410", "hex");
    const at = der.indexOf(marker);
    assert.ok(at > 0);
    assert.equal(der.subarray(at + marker.length, at + marker.length + 16).toString("hex"), ppid);
  }
});

test("gap 4: a Platform-CA quote is checked against the Platform CA's CRL, not the Processor CA's", async () => {
  const platform = vectorCollateral(tdx.collateral_file);
  const processor = vectorCollateral(sgx.collateral_file);
  const claims = await verify(tdx, platform);
  assert.equal(claims.extra?.pckCa, "platform");
  // The Processor CA's CRL is genuine and in its window at tdx.now_secs, but it is the wrong CA's CRL.
  const swapped = { ...platform, pck_crl: processor.pck_crl, pck_crl_issuer_chain: processor.pck_crl_issuer_chain };
  await assert.rejects(verify(tdx, swapped), rejectsWith("CRL_INVALID", /Platform CA/));
  // And the other way round.
  const swappedBack = { ...processor, pck_crl: platform.pck_crl, pck_crl_issuer_chain: platform.pck_crl_issuer_chain };
  await assert.rejects(verify(sgx, swappedBack), rejectsWith("CRL_INVALID", /Processor CA/));
});

test("a revoked PCK certificate is refused", () => {
  const collateral = vectorCollateral(tdx.collateral_file);
  const crl = parseCrl(new Uint8Array(Buffer.from(collateral.pck_crl, "hex")), "PCK CRL");
  const pck = parsePemChain(embeddedPckChain(parseQuote(vectorBytes(tdx.quote_file)))!, "chain")[0]!;
  checkNotRevoked(pck, crl, "PCK certificate");
  const revokedSerial = [...crl.revoked][0]!;
  assert.throws(() => checkNotRevoked({ ...pck, serial: revokedSerial }, crl, "PCK certificate"), rejectsWith("CERT_REVOKED"));
});

function tdReportOf(file: string): TdReport {
  const q = parseQuote(vectorBytes(file));
  assert.equal(q.body.kind, "td");
  return q.body.report as TdReport;
}

test("gap 5: TDX TCB levels are matched from TEE_TCB_SVN byte 2 when TEE_TCB_SVN[1] > 0", () => {
  const collateral = vectorCollateral(tdx.collateral_file);
  const tcbInfo = parseTcbInfo(collateral.tcb_info);
  const td = tdReportOf(tdx.quote_file);
  const pck = parsePckExtensions(parsePemChain(embeddedPckChain(parseQuote(vectorBytes(tdx.quote_file)))!, "c")[0]!);
  assert.ok(td.teeTcbSvn[1]! > 0, "vector has a TDX module version in TEE_TCB_SVN[1]");
  // Raise the first level's bytes 0 and 1 above the quote's: they describe the module (judged by
  // tdxModuleIdentities), so the level must still match; a 16-byte comparison would not.
  const level0 = tcbInfo.tcbLevels[0]!;
  level0.tdxComponents![0] = td.teeTcbSvn[0]! + 1;
  level0.tdxComponents![1] = td.teeTcbSvn[1]! + 1;
  assert.equal(matchTcbLevel(tcbInfo, pck, td.teeTcbSvn), level0);
  // With TEE_TCB_SVN[1] = 0 all 16 bytes count, and the raised level is skipped.
  const legacy = Uint8Array.from(td.teeTcbSvn);
  legacy[1] = 0;
  assert.notEqual(matchTcbLevel(tcbInfo, pck, legacy), level0);
  // Bytes from 2 on still count: a higher microcode SVN in the level refuses it.
  level0.tdxComponents![2] = td.teeTcbSvn[2]! + 1;
  assert.notEqual(matchTcbLevel(tcbInfo, pck, td.teeTcbSvn), level0);
});

test("gap 5: the TDX module's status comes from tdxModuleIdentities TDX_xx by TEE_TCB_SVN[0]", () => {
  const tcbInfo = parseTcbInfo(vectorCollateral(tdx.collateral_file).tcb_info);
  const td = tdReportOf(tdx.quote_file);
  const module = evaluateTdxModule(tcbInfo, td);
  assert.equal(module.id, `TDX_0${td.teeTcbSvn[1]}`);
  assert.equal(module.tcbStatus, "UpToDate");
  const older = { ...td, teeTcbSvn: Uint8Array.from([3, td.teeTcbSvn[1]!, ...td.teeTcbSvn.subarray(2)]) };
  assert.equal(evaluateTdxModule(tcbInfo, older).tcbStatus, "OutOfDate");
  assert.equal(convergeStatus("UpToDate", "OutOfDate"), "OutOfDate");
  assert.equal(convergeStatus("ConfigurationNeeded", "OutOfDate"), "OutOfDateConfigurationNeeded");
  const tooOld = { ...td, teeTcbSvn: Uint8Array.from([1, td.teeTcbSvn[1]!, ...td.teeTcbSvn.subarray(2)]) };
  assert.throws(() => evaluateTdxModule(tcbInfo, tooOld), rejectsWith("TCB_LEVEL_UNMATCHED"));
  const unknown = { ...td, teeTcbSvn: Uint8Array.from([6, 9, ...td.teeTcbSvn.subarray(2)]) };
  assert.throws(() => evaluateTdxModule(tcbInfo, unknown), rejectsWith("TCB_LEVEL_UNMATCHED", /TDX_09/));
  const wrongSigner = { ...td, mrSignerSeam: new Uint8Array(48).fill(1) };
  assert.throws(() => evaluateTdxModule(tcbInfo, wrongSigner), rejectsWith("TCB_LEVEL_UNMATCHED", /MRSIGNERSEAM/));
});

test("collateral for another platform or TEE is refused", async () => {
  const sgxCollateral = vectorCollateral(sgx.collateral_file);
  const tdxCollateral = vectorCollateral(tdx.collateral_file);
  const withTdxQe = { ...sgxCollateral, qe_identity: tdxCollateral.qe_identity, qe_identity_signature: tdxCollateral.qe_identity_signature };
  await assert.rejects(verify(sgx, withTdxQe), rejectsWith(/COLLATERAL_MISMATCH|QE_IDENTITY_MISMATCH/));
  const second = vectorCollateral("tdx_v4_second_collateral.json");
  const otherFmspc = { ...tdxCollateral, tcb_info: second.tcb_info, tcb_info_signature: second.tcb_info_signature };
  await assert.rejects(verify(tdx, otherFmspc), rejectsWith(/COLLATERAL_MISMATCH|COLLATERAL_(EXPIRED|NOT_YET_VALID)/));
});

test("a signature swapped between collateral documents is refused", async () => {
  const collateral = vectorCollateral(sgx.collateral_file);
  await assert.rejects(verify(sgx, { ...collateral, tcb_info_signature: collateral.qe_identity_signature }), rejectsWith("COLLATERAL_SIGNATURE_INVALID"));
});
