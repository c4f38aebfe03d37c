import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeSnpCertTable, parseSnpCertTable, SNP_CERT_GUIDS, TsmProvider } from "../../src/attestation/providers/tsm.ts";
import { createProvider, ProviderUnavailableError, type ProviderError } from "../../src/attestation/providers/index.ts";

const data = (name: string) => readFile(new URL(`../../../shared/testdata/attestation/${name}`, import.meta.url));
const tdxQuote = await data("tdx_v4_quote.bin");
const snpReport = await data("sevsnp_milan_report.bin");
const vcek = await data("sevsnp_milan_vcek.der");
const [ask, ark] = (await data("sevsnp_milan_ask_ark.pem")).toString("utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
const ENTRY = "cloister-test";

/** A fake configfs-tsm tree whose report entry already holds real evidence (configfs would create the files on mkdir). */
async function fakeTree(provider: string, outblob: Uint8Array, auxblob?: Uint8Array): Promise<{ root: string; entry: string }> {
  const root = await mkdtemp(join(tmpdir(), "cloister-tsm-"));
  const entry = join(root, "sys", "kernel", "config", "tsm", "report", ENTRY);
  await mkdir(entry, { recursive: true });
  await writeFile(join(entry, "provider"), `${provider}\n`);
  await writeFile(join(entry, "generation"), "1\n");
  await writeFile(join(entry, "outblob"), outblob);
  if (auxblob) await writeFile(join(entry, "auxblob"), auxblob);
  return { root, entry };
}

test("tsm with tdx_guest writes inblob and returns the TDX quote", async () => {
  const { root, entry } = await fakeTree("tdx_guest", tdxQuote);
  try {
    const provider = await createProvider({ provider: "tsm", root, entryName: ENTRY });
    assert.equal(provider.teeType, "TDX");
    const reportData = Uint8Array.from({ length: 64 }, (_, i) => 200 - i);
    const evidence = await provider.attest(reportData);
    assert.equal(evidence.teeType, "TDX");
    assert.deepEqual(evidence.quote, new Uint8Array(tdxQuote));
    assert.equal(evidence.collateral, undefined);
    assert.deepEqual(new Uint8Array(await readFile(join(entry, "inblob"))), reportData);
    assert.equal(await provider.measurement(), "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("tsm with sev_guest returns the SNP report with the certificates from auxblob", async () => {
  const auxblob = encodeSnpCertTable([
    { guid: SNP_CERT_GUIDS.ark, der: ark!.raw },
    { guid: SNP_CERT_GUIDS.vcek, der: vcek },
    { guid: SNP_CERT_GUIDS.ask, der: ask!.raw },
  ]);
  const { root, entry } = await fakeTree("sev_guest", snpReport, auxblob);
  try {
    const provider = await TsmProvider.open({ root, entryName: ENTRY });
    assert.equal(provider.teeType, "SEV-SNP");
    const evidence = await provider.attest(new Uint8Array(64).fill(9));
    assert.equal(evidence.teeType, "SEV-SNP");
    if (evidence.teeType !== "SEV-SNP") return;
    assert.deepEqual(evidence.report, new Uint8Array(snpReport));
    assert.deepEqual(evidence.collateral.vcek, new Uint8Array(vcek));
    const chain = evidence.collateral.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
    assert.equal(chain[0]!.fingerprint256, ask!.fingerprint256);
    assert.equal(chain[1]!.fingerprint256, ark!.fingerprint256);
    assert.deepEqual(new Uint8Array(await readFile(join(entry, "inblob"))), new Uint8Array(64).fill(9));
    assert.equal(await provider.measurement(), "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("SEV-SNP without auxblob needs configured certificates", async () => {
  const { root } = await fakeTree("sev_guest", snpReport);
  try {
    await assert.rejects((await TsmProvider.open({ root, entryName: ENTRY })).attest(new Uint8Array(64)), (e: ProviderError) => e.code === "PROVIDER_CONFIG");
    const configured = await TsmProvider.open({ root, entryName: ENTRY, snpCollateral: { vcek, chainPem: "pem" } });
    const evidence = await configured.attest(new Uint8Array(64));
    assert.ok(evidence.teeType === "SEV-SNP" && evidence.collateral.chainPem === "pem");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("no configfs-tsm, an unknown provider, or SGX are clear errors", async () => {
  const empty = await mkdtemp(join(tmpdir(), "cloister-tsm-empty-"));
  try {
    await assert.rejects(TsmProvider.open({ root: empty }), (e: unknown) => {
      assert.ok(e instanceof ProviderUnavailableError);
      assert.match(e.message, /"tsm" attestation provider is not available on this machine/);
      return true;
    });
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
  const { root } = await fakeTree("arm_cca_guest", tdxQuote);
  try {
    await assert.rejects(TsmProvider.open({ root, entryName: ENTRY }), (e: ProviderError) => e.code === "PROVIDER_UNAVAILABLE" && /arm_cca_guest/.test(e.message));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  assert.throws(() => new TsmProvider("SGX"), (e: ProviderError) => e.code === "PROVIDER_CONFIG");
});

test("the SEV certificate table round-trips and rejects entries pointing outside it", () => {
  const table = encodeSnpCertTable([{ guid: SNP_CERT_GUIDS.vcek, der: Uint8Array.of(1, 2, 3) }]);
  assert.deepEqual(parseSnpCertTable(table).get(SNP_CERT_GUIDS.vcek), Uint8Array.of(1, 2, 3));
  const broken = new Uint8Array(table);
  new DataView(broken.buffer).setUint32(20, 9999, true);
  assert.throws(() => parseSnpCertTable(broken), (e: ProviderError) => e.code === "PROVIDER_BAD_OUTPUT");
  assert.throws(() => parseSnpCertTable(table.subarray(0, 24)), (e: ProviderError) => e.code === "PROVIDER_BAD_OUTPUT");
});

test("without entryName each report gets a fresh entry that is removed afterwards", async () => {
  const root = await mkdtemp(join(tmpdir(), "cloister-tsm-fresh-"));
  const reports = join(root, "sys", "kernel", "config", "tsm", "report");
  try {
    await mkdir(reports, { recursive: true });
    // A plain directory has no configfs attribute files, so the new entry lacks "provider".
    await assert.rejects(TsmProvider.open({ root }), (e: ProviderError) => e.code === "PROVIDER_UNAVAILABLE" && /provider/.test(e.message));
    assert.deepEqual(await readdir(reports), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
