import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { loadOrCreateKeys, SEALED_KEYS_FILE } from "../../src/enclave/keys.ts";
import { listMeasuredFiles, measureEnclaveCode } from "../../src/enclave/measurement.ts";
import { deriveSealingKey, loadOrCreatePlatformSecret } from "../../src/enclave/sealing.ts";
import { tempDir } from "./task-fixture.ts";

test("the code measurement covers the enclave's own code and is stable", async () => {
  const files = await listMeasuredFiles();
  for (const f of ["src/enclave/main.ts", "src/crypto/hpke.ts", "src/protocol/binding.ts", "src/attestation/providers/index.ts"]) assert.ok(files.includes(f), f);
  assert.ok(files.every((f) => f.endsWith(".ts")));
  const m = await measureEnclaveCode();
  assert.match(m, /^[0-9a-f]{64}$/);
  assert.equal(await measureEnclaveCode(), m);
});

test("keys survive a reload with the same measurement and are refused under another", async () => {
  const dir = await tempDir("sealing");
  try {
    const secret = await loadOrCreatePlatformSecret(join(dir, "platform"));
    assert.deepEqual(await loadOrCreatePlatformSecret(join(dir, "platform")), secret);
    const m1 = "11".repeat(32);
    const first = await loadOrCreateKeys(join(dir, "data"), deriveSealingKey(secret, m1));
    assert.equal(first.created, true);
    const second = await loadOrCreateKeys(join(dir, "data"), deriveSealingKey(secret, m1));
    assert.equal(second.created, false);
    assert.equal(second.keys.account.address, first.keys.account.address);
    assert.deepEqual(second.keys.hpke, first.keys.hpke);

    const sealed = await readFile(join(dir, "data", SEALED_KEYS_FILE));
    assert.equal(sealed.includes(Buffer.from(first.keys.hpke.privateKey)), false);
    await assert.rejects(loadOrCreateKeys(join(dir, "data"), deriveSealingKey(secret, "22".repeat(32))), (e: unknown) => {
      assert.ok(e instanceof EnclaveError);
      assert.equal(e.code, "UNSEAL_FAILED");
      return true;
    });

    const altered = Buffer.from(sealed);
    altered[altered.length - 20]! ^= 1;
    await writeFile(join(dir, "data", SEALED_KEYS_FILE), altered);
    await assert.rejects(loadOrCreateKeys(join(dir, "data"), deriveSealingKey(secret, m1)), { code: "UNSEAL_FAILED" });
    await writeFile(join(dir, "data", SEALED_KEYS_FILE), "garbage");
    await assert.rejects(loadOrCreateKeys(join(dir, "data"), deriveSealingKey(secret, m1)), { code: "SEALED_STATE_MALFORMED" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
