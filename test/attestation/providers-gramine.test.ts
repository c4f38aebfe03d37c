import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GramineProvider } from "../../src/attestation/providers/gramine.ts";
import { createProvider, ProviderUnavailableError, type ProviderError } from "../../src/attestation/providers/index.ts";

const realQuote = await readFile(new URL("../../../shared/testdata/attestation/sgx_v3_quote.bin", import.meta.url));
const REAL_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";

/** A fake Gramine /dev/attestation holding a real SGX quote. */
async function fakeTree(type = "dcap"): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "cloister-gramine-"));
  const dev = join(root, "dev", "attestation");
  await mkdir(dev, { recursive: true });
  await writeFile(join(dev, "attestation_type"), `${type}\n`);
  await writeFile(join(dev, "quote"), realQuote);
  return root;
}

test("gramine writes the report data and returns the quote as SGX evidence", async () => {
  const root = await fakeTree();
  try {
    const provider = await createProvider({ provider: "gramine", root });
    assert.ok(provider instanceof GramineProvider);
    assert.equal(provider.simulated, false);
    const reportData = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
    const evidence = await provider.attest(reportData);
    assert.equal(evidence.teeType, "SGX");
    assert.deepEqual(evidence.quote, new Uint8Array(realQuote));
    assert.equal(evidence.collateral, undefined);
    assert.deepEqual(new Uint8Array(await readFile(join(root, "dev", "attestation", "user_report_data"))), reportData);
    assert.equal(await provider.measurement(), REAL_MRENCLAVE);
    await assert.rejects(provider.attest(new Uint8Array(63)), (e: ProviderError) => e.code === "PROVIDER_BAD_INPUT");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("gramine outside an enclave is a clear PROVIDER_UNAVAILABLE error", async () => {
  const root = await mkdtemp(join(tmpdir(), "cloister-gramine-empty-"));
  try {
    const provider = new GramineProvider({ root });
    await assert.rejects(provider.attest(new Uint8Array(64)), (e: unknown) => {
      assert.ok(e instanceof ProviderUnavailableError);
      assert.equal(e.code, "PROVIDER_UNAVAILABLE");
      assert.match(e.message, /"gramine" attestation provider is not available on this machine/);
      return true;
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("gramine without DCAP attestation, or with garbage quotes, is refused", async () => {
  const root = await fakeTree("none");
  try {
    await assert.rejects(new GramineProvider({ root }).attest(new Uint8Array(64)), /not "dcap"/);
    await writeFile(join(root, "dev", "attestation", "attestation_type"), "dcap");
    await writeFile(join(root, "dev", "attestation", "quote"), Buffer.alloc(20));
    await assert.rejects(new GramineProvider({ root }).attest(new Uint8Array(64)), (e: ProviderError) => e.code === "PROVIDER_BAD_OUTPUT");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
