/** The vault enclave's parts that need no chain: its state machine, its sealed store, its own measurement. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { listMeasuredFiles, measureEnclaveCode, VAULT_ENCLAVE_ENTRYPOINTS } from "../../src/enclave/measurement.ts";
import { SealedVaultStore } from "../../src/enclave/vault/sealed-store.ts";
import { VaultStateMachine } from "../../src/enclave/vault/states.ts";
import { splitSecret } from "../../src/protocol/vault-shares.ts";

test("the state machine allows only its transitions, and serves only when caught up", () => {
  const m = new VaultStateMachine("bootstrapping");
  assert.throws(() => m.require("retrieve"), { code: "WRONG_STATE" });
  assert.throws(() => m.require("exportShares"), { code: "WRONG_STATE" });
  m.require("importShares");
  assert.throws(() => m.fire("caughtUp"), { code: "WRONG_STATE" });
  assert.equal(m.fire("bootstrapDone"), "recovering");
  assert.throws(() => m.require("retrieve"), { code: "WRONG_STATE" });
  assert.throws(() => m.fire("bootstrapDone"), { code: "WRONG_STATE" });
  assert.equal(m.fire("caughtUp"), "serving");
  m.require("retrieve");
  m.require("exportShares");
});

test("the sealed store keeps shares, state and nonces across a reopen, refuses a moved file and another sealing key", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-vault-store-"));
  try {
    const key = randomBytes(32);
    const binding = { chainId: 31337n, vault: `0x${"11".repeat(20)}` as const, tokenId: 7n };
    const set = await splitSecret(binding, new TextEncoder().encode("sealed canary"), { threshold: 2, shareCount: 3 });
    const first = await SealedVaultStore.open(dir, key);
    assert.equal(first.fresh, true);
    await first.store.put({ tokenId: 7n, version: 1n, share: set.shares[1]!, descriptor: set.descriptor, root: set.root });
    await first.store.put({ tokenId: 8n, version: 1n, share: set.shares[1]!, descriptor: { ...set.descriptor, binding: { ...binding, tokenId: 8n } }, root: set.root });
    first.state.checkpoint = 42n;
    first.state.unconfirmed.set(7n, 1n);
    await first.store.saveState(first.state);
    await first.store.saveNonces(new Map([["k", 9n]]));
    const again = await SealedVaultStore.open(dir, key);
    assert.equal(again.fresh, false);
    assert.equal(again.state.checkpoint, 42n);
    assert.deepEqual([...again.state.unconfirmed], [[7n, 1n]]);
    assert.deepEqual([...again.nonces], [["k", 9n]]);
    assert.deepEqual(again.store.get(7n)?.share.share, set.shares[1]!.share);
    assert.deepEqual(again.store.page(7n, 10).map((h) => h.tokenId), [8n]);
    // No plaintext on disk.
    for (const f of await readdir(join(dir, "vault", "shares"))) assert.ok(f.endsWith(".bin"));
    await assert.rejects(SealedVaultStore.open(dir, randomBytes(32)), { code: "UNSEAL_FAILED" });
    await rename(join(dir, "vault", "shares", "7.bin"), join(dir, "vault", "shares", "9.bin"));
    await rm(join(dir, "vault", "shares", "8.bin"));
    await assert.rejects(SealedVaultStore.open(dir, key), { code: "SEALED_STATE_MALFORMED" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the vault enclave is its own image: its measurement differs from the task enclave's and its closure leaves out the task runtime", async () => {
  const vaultFiles = await listMeasuredFiles(undefined, VAULT_ENCLAVE_ENTRYPOINTS);
  const taskFiles = await listMeasuredFiles();
  assert.ok(vaultFiles.includes("src/enclave/vault/main.ts"));
  assert.ok(!vaultFiles.includes("src/enclave/main.ts"));
  assert.ok(!vaultFiles.some((f) => f.startsWith("src/enclave/executors/") || f.startsWith("src/enclave/jobs/") || f.startsWith("src/enclave/connectors/")));
  assert.ok(taskFiles.some((f) => f.startsWith("src/enclave/executors/")));
  assert.ok(!taskFiles.includes("src/enclave/vault/main.ts"));
  assert.notEqual(await measureEnclaveCode(undefined, VAULT_ENCLAVE_ENTRYPOINTS), await measureEnclaveCode());
});
