import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadOrCreateKeys } from "../../src/enclave/keys.ts";
import { GramineSealingRoot, sealingRootFor, SimulatedSealingRoot } from "../../src/enclave/sealing-root.ts";
import { tempDir } from "./task-fixture.ts";

const measurement = "ab".repeat(32);

async function fakeGramine(dir: string, key: Uint8Array): Promise<string> {
  await mkdir(join(dir, "dev", "attestation", "keys"), { recursive: true });
  await writeFile(join(dir, "dev", "attestation", "keys", "_sgx_mrenclave"), key);
  return dir;
}

test("Gramine's MRENCLAVE sealing key seals an identity that the same key unseals and another key does not", async () => {
  const dir = await tempDir("gramine-sealing");
  try {
    const cpu = await fakeGramine(join(dir, "cpu-a"), new Uint8Array(16).fill(0x5a));
    const otherCpu = await fakeGramine(join(dir, "cpu-b"), new Uint8Array(16).fill(0x3c));
    const root = new GramineSealingRoot(cpu);
    assert.equal(root.simulated, false);
    const first = await loadOrCreateKeys(join(dir, "data"), await root.sealingKey(measurement));
    const again = await loadOrCreateKeys(join(dir, "data"), await new GramineSealingRoot(cpu).sealingKey(measurement));
    assert.equal(again.created, false);
    assert.equal(again.keys.account.address, first.keys.account.address);
    await assert.rejects(loadOrCreateKeys(join(dir, "data"), await new GramineSealingRoot(otherCpu).sealingKey(measurement)), { code: "UNSEAL_FAILED" });
    await assert.rejects(loadOrCreateKeys(join(dir, "data"), await root.sealingKey("cd".repeat(32))), { code: "UNSEAL_FAILED" }, "another measurement on the same CPU");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a missing or wrong-sized Gramine key, and TDX/SNP, are refused with SEALING_UNAVAILABLE", async () => {
  const dir = await tempDir("gramine-missing");
  try {
    await assert.rejects(new GramineSealingRoot(dir).sealingKey(measurement), { code: "SEALING_UNAVAILABLE", message: /_sgx_mrenclave/ });
    await fakeGramine(dir, new Uint8Array(32));
    await assert.rejects(new GramineSealingRoot(dir).sealingKey(measurement), { code: "SEALING_UNAVAILABLE", message: /32 bytes, not 16/ });
    assert.throws(() => sealingRootFor({ provider: "tsm" }), { code: "SEALING_UNAVAILABLE", message: /key service/ });
    assert.throws(() => sealingRootFor({ provider: "sim" } as never), { code: "SEALING_UNAVAILABLE", message: /pkiDir/ });
    assert.ok(sealingRootFor({ provider: "sim", pkiDir: dir }) instanceof SimulatedSealingRoot);
    assert.ok(sealingRootFor({ provider: "gramine", root: dir }) instanceof GramineSealingRoot);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
