import { test } from "node:test";
import assert from "node:assert/strict";
import { constants, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { AttestationError } from "../../src/attestation/dcap/errors.ts";
import { verifySnpReport } from "../../src/attestation/snp/verify.ts";
import { parseSnpReport } from "../../src/attestation/snp/report.ts";
import { bitString, explicit, integer, octetString, oid, primitive, sequence, set, time, utf8String } from "./der-build.ts";
import type { SnpCollateral } from "../../src/attestation/types.ts";

const dir = new URL("../../../shared/testdata/attestation/", import.meta.url);
const read = async (name: string) => new Uint8Array(await readFile(new URL(name, dir)));
const cases = JSON.parse(await readFile(new URL("snp_cases.json", dir), "utf8")) as {
  name: string; report_file: string; vcek_file: string; cert_chain_file: string; now_secs: number;
  expect: Record<string, string | number | boolean>;
}[];

const genuine = {
  report: await read("sevsnp_milan_report.bin"),
  collateral: { vcek: await read("sevsnp_milan_vcek.der"), chainPem: await readFile(new URL("sevsnp_milan_ask_ark.pem", dir), "utf8") },
  now: 1700000000,
};
const pemBlocks = genuine.collateral.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;

async function rejects(p: Promise<unknown>, code: string, message?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

for (const c of cases) {
  test(`snp case ${c.name}`, async () => {
    const report = await read(c.report_file);
    const collateral: SnpCollateral = { vcek: await read(c.vcek_file), chainPem: await readFile(new URL(c.cert_chain_file, dir), "utf8") };
    const parsed = parseSnpReport(report);
    assert.equal(parsed.version, c.expect.report_version);
    assert.equal(Buffer.from(parsed.measurement).toString("hex"), c.expect.measurement);
    if (!c.expect.ok) {
      await rejects(verifySnpReport(report, collateral, { now: c.now_secs }), "REPORT_SIGNATURE_INVALID");
      return;
    }
    const { claims } = await verifySnpReport(report, collateral, { now: c.now_secs });
    const extra = claims.extra as Record<string, unknown>;
    assert.equal(claims.teeType, c.expect.tee_type);
    assert.equal(claims.quoteVersion, c.expect.report_version);
    assert.equal(claims.measurement, c.expect.measurement);
    assert.equal(claims.reportData, c.expect.report_data);
    assert.equal(claims.simulated, false);
    assert.equal(extra.vmpl, c.expect.vmpl);
    assert.equal(extra.signatureAlgo, c.expect.signature_algo);
    assert.equal(extra.policy, c.expect.policy_hex);
    assert.equal(extra.hostData, c.expect.host_data);
    assert.equal(extra.chipId, c.expect.chip_id);
    assert.equal((extra.reportedTcb as { rawHex: string }).rawHex, c.expect.reported_tcb_hex_le);
    assert.equal(extra.ark, c.expect.ark_cn);
    assert.equal(extra.arkSha256, c.expect.ark_sha256);
    // policy 0xb0000 has bit 19 (DEBUG) set
    assert.equal(claims.debug, (BigInt(c.expect.policy_hex as string) >> 19n & 1n) === 1n);
  });
}

test("ASK and ARK in the wrong order are refused", async () => {
  const swapped = { ...genuine.collateral, chainPem: `${pemBlocks[1]}\n${pemBlocks[0]}\n` };
  await rejects(verifySnpReport(genuine.report, swapped, { now: genuine.now }), "CERT_CHAIN_INVALID", /wrong order/);
});

test("a chain without the ARK is refused", async () => {
  const short = { ...genuine.collateral, chainPem: pemBlocks[0]! };
  await rejects(verifySnpReport(genuine.report, short, { now: genuine.now }), "CERT_CHAIN_INVALID", /exactly two/);
});

test("a VCEK with one flipped signature byte is refused", async () => {
  const vcek = Uint8Array.from(genuine.collateral.vcek);
  vcek[vcek.length - 10]! ^= 0x01;
  await rejects(verifySnpReport(genuine.report, { ...genuine.collateral, vcek }, { now: genuine.now }), "CERT_CHAIN_INVALID", /VCEK certificate signature/);
});

test("truncated and extended reports are refused as malformed", async () => {
  await rejects(verifySnpReport(genuine.report.subarray(0, 1000), genuine.collateral, { now: genuine.now }), "REPORT_MALFORMED", /1184/);
  await rejects(verifySnpReport(new Uint8Array([...genuine.report, 0]), genuine.collateral, { now: genuine.now }), "REPORT_MALFORMED");
});

test("certificate validity is checked at `now`", async () => {
  await rejects(verifySnpReport(genuine.report, genuine.collateral, { now: Date.UTC(2030, 0, 1) / 1000 }), "CERT_EXPIRED");
  await rejects(verifySnpReport(genuine.report, genuine.collateral, { now: Date.UTC(2022, 0, 1) / 1000 }), "CERT_NOT_YET_VALID");
});

test("an ARK other than the one passed as trusted is refused", async () => {
  await rejects(verifySnpReport(genuine.report, genuine.collateral, { now: genuine.now, arkPem: pemBlocks[0]! }), "UNTRUSTED_ROOT");
});

// A synthetic AMD-shaped PKI (RSA-PSS ARK/ASK, P-384 VCEK with TCB extensions)
// exercises the checks the one genuine report cannot: pinning, TCB and chip id.
const RSASSA_PSS = "1.2.840.113549.1.1.10";
const SHA384 = "2.16.840.1.101.3.4.2.2";
const pssAlg = sequence(oid(RSASSA_PSS), sequence(explicit(0, sequence(oid(SHA384))), explicit(1, sequence(oid("1.2.840.113549.1.1.8"), sequence(oid(SHA384)))), explicit(2, integer(Uint8Array.of(48)))));
const nameOf = (cn: string) => sequence(set(sequence(oid("2.5.4.3"), utf8String(cn))));
const ext = (id: string, value: Uint8Array) => sequence(oid(id), octetString(value));
const spl = (n: number) => primitive(2, Uint8Array.of(n));

function issue(subject: string, issuer: string, subjectKey: KeyObject, issuerKey: KeyObject, extensions: Uint8Array[] = []): Uint8Array {
  const tbs = sequence(
    explicit(0, integer(Uint8Array.of(2))), integer(Uint8Array.of(1)), pssAlg, nameOf(issuer),
    sequence(time(new Date("2020-01-01T00:00:00Z")), time(new Date("2040-01-01T00:00:00Z"))), nameOf(subject),
    new Uint8Array(subjectKey.export({ type: "spki", format: "der" })),
    ...(extensions.length ? [explicit(3, sequence(...extensions))] : []),
  );
  const signature = sign("sha384", tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return sequence(tbs, pssAlg, bitString(signature));
}

const pemOf = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----\n`;

const fake = (() => {
  const ark = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ask = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const vcek = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  const chipId = new Uint8Array(64).fill(0xc1);
  const tcb = { bootloader: 3, tee: 0, snp: 8, microcode: 115 };
  const arkDer = issue("ARK-Synthetic", "ARK-Synthetic", ark.publicKey, ark.privateKey);
  const askDer = issue("SEV-Synthetic", "ARK-Synthetic", ask.publicKey, ark.privateKey);
  const vcekDer = issue("SEV-VCEK", "SEV-Synthetic", vcek.publicKey, ask.privateKey, [
    ext("1.3.6.1.4.1.3704.1.3.1", spl(tcb.bootloader)), ext("1.3.6.1.4.1.3704.1.3.2", spl(tcb.tee)),
    ext("1.3.6.1.4.1.3704.1.3.3", spl(tcb.snp)), ext("1.3.6.1.4.1.3704.1.3.8", spl(tcb.microcode)),
    ext("1.3.6.1.4.1.3704.1.4", chipId),
  ]);
  return { vcek, chipId, tcb, arkPem: pemOf(arkDer), collateral: { vcek: vcekDer, chainPem: pemOf(askDer) + pemOf(arkDer) } };
})();

function fakeReport(opts: { policy?: bigint; vmpl?: number; microcode?: number; chipId?: Uint8Array; keyInfo?: number } = {}): Uint8Array {
  const r = new Uint8Array(0x4a0);
  const v = new DataView(r.buffer);
  v.setUint32(0, 2, true);
  v.setBigUint64(0x08, opts.policy ?? 0x30000n, true);
  v.setUint32(0x30, opts.vmpl ?? 1, true);
  v.setUint32(0x34, 1, true);
  v.setUint32(0x48, opts.keyInfo ?? 0, true);
  r.fill(0xab, 0x90, 0x90 + 48);
  r.set([fake.tcb.bootloader, fake.tcb.tee, 0, 0, 0, 0, fake.tcb.snp, opts.microcode ?? fake.tcb.microcode], 0x180);
  r.set(opts.chipId ?? fake.chipId, 0x1a0);
  const sig = sign("sha384", r.subarray(0, 0x2a0), { key: fake.vcek.privateKey, dsaEncoding: "ieee-p1363" });
  r.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
  r.set(Uint8Array.from(sig.subarray(48)).reverse(), 0x2e8);
  return r;
}

test("synthetic chain: an unpinned ARK is refused, the same ARK passed as trusted is accepted", async () => {
  await rejects(verifySnpReport(fakeReport(), fake.collateral), "UNTRUSTED_ROOT", /not a pinned AMD root/);
  const { claims } = await verifySnpReport(fakeReport(), fake.collateral, { arkPem: fake.arkPem });
  assert.equal(claims.debug, false);
  assert.equal((claims.extra as { vmpl: number }).vmpl, 1);
  assert.equal(claims.measurement, "ab".repeat(48));
});

test("synthetic chain: debug comes from policy bit 19", async () => {
  const { claims } = await verifySnpReport(fakeReport({ policy: 0x30000n | (1n << 19n) }), fake.collateral, { arkPem: fake.arkPem });
  assert.equal(claims.debug, true);
});

test("synthetic chain: a reported TCB other than the VCEK's is refused", async () => {
  await rejects(verifySnpReport(fakeReport({ microcode: 114 }), fake.collateral, { arkPem: fake.arkPem }), "TCB_LEVEL_UNMATCHED", /ucodeSPL is 114/);
});

test("synthetic chain: a chip id other than the VCEK's hwID is refused", async () => {
  await rejects(verifySnpReport(fakeReport({ chipId: new Uint8Array(64).fill(0xc2) }), fake.collateral, { arkPem: fake.arkPem }), "COLLATERAL_MISMATCH", /another chip/);
});

test("synthetic chain: VLEK-signed reports are refused as unsupported", async () => {
  await rejects(verifySnpReport(fakeReport({ keyInfo: 1 << 2 }), fake.collateral, { arkPem: fake.arkPem }), "QUOTE_UNSUPPORTED", /VLEK/);
});
