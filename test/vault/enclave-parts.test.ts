/** The vault enclave's parts that need no chain: its state machine, its sealed store, its own measurement. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
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
    first.store.put({ tokenId: 7n, version: 1n, share: set.shares[1]!, descriptor: set.descriptor, root: set.root });
    first.store.put({ tokenId: 8n, version: 1n, share: set.shares[1]!, descriptor: { ...set.descriptor, binding: { ...binding, tokenId: 8n } }, root: set.root });
    first.state.checkpoint = 42n;
    first.state.unconfirmed.set(7n, 1n);
    first.store.saveState(first.state);
    first.store.saveNonces(new Map([["k", 9n]]));
    const again = await SealedVaultStore.open(dir, key);
    assert.equal(again.fresh, false);
    assert.equal(again.state.checkpoint, 42n);
    assert.deepEqual([...again.state.unconfirmed], [[7n, 1n]]);
    assert.deepEqual([...again.nonces], [["k", 9n]]);
    assert.deepEqual(again.store.get(7n)?.share.share, set.shares[1]!.share);
    assert.deepEqual(again.store.page(7n, 10).map((h) => h.tokenId), [8n]);
    // Two calls, two segments; no plaintext on disk.
    assert.deepEqual((await readdir(join(dir, "vault", "shares"))).sort(), ["seg-0.bin", "seg-1.bin"]);
    for (const f of await readdir(join(dir, "vault", "shares"))) assert.equal(Buffer.from(await readFile(join(dir, "vault", "shares", f))).includes(Buffer.from(Buffer.from(set.shares[1]!.share).toString("hex"))), false);
    await assert.rejects(SealedVaultStore.open(dir, randomBytes(32)), { code: "UNSEAL_FAILED" });
    await rename(join(dir, "vault", "shares", "seg-1.bin"), join(dir, "vault", "shares", "seg-2.bin"));
    await assert.rejects(SealedVaultStore.open(dir, key), { code: "SEALED_STATE_MALFORMED", message: /moved/ });
    await rename(join(dir, "vault", "shares", "seg-2.bin"), join(dir, "vault", "shares", "8.bin"));
    await assert.rejects(SealedVaultStore.open(dir, key), { code: "SEALED_STATE_MALFORMED", message: /not a share segment/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("share segments: a later entry wins, a superseded segment is deleted, a removal stays removed over an older segment", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-vault-segments-"));
  try {
    const key = randomBytes(32);
    const vault = `0x${"22".repeat(20)}` as const;
    const held = async (tokenId: bigint, version: bigint) => {
      const set = await splitSecret({ chainId: 31337n, vault, tokenId }, new TextEncoder().encode(`secret ${tokenId}`), { threshold: 2, shareCount: 3, version });
      return { tokenId, version, share: set.shares[0]!, descriptor: set.descriptor, root: set.root };
    };
    const segments = async () => (await readdir(join(dir, "vault", "shares"))).sort();
    const { store } = await SealedVaultStore.open(dir, key);
    store.putMany([await held(1n, 1n), await held(2n, 1n), await held(3n, 1n)]);
    store.putMany([await held(2n, 2n)]);
    assert.deepEqual(await segments(), ["seg-0.bin", "seg-1.bin"]);
    // Token 2's newer version is in seg-1; removing it writes a removal and leaves seg-1 with nothing live.
    store.remove(2n);
    assert.deepEqual(await segments(), ["seg-0.bin", "seg-2.bin"]);
    assert.equal(store.get(2n), undefined);
    store.putMany([await held(1n, 2n), await held(3n, 2n)]);
    // seg-0 is superseded whole (token 1 and 3 moved on, token 2 removed after it): deleted. The removal stays.
    assert.deepEqual(await segments(), ["seg-2.bin", "seg-3.bin"]);
    const again = (await SealedVaultStore.open(dir, key)).store;
    assert.deepEqual([1n, 2n, 3n].map((t) => again.get(t)?.version), [2n, undefined, 2n]);
    assert.equal(again.size, 2);
    // A removal also hides a stale entry of an older segment still on disk (token 5's v1 in seg-4, kept by token 4).
    again.putMany([await held(4n, 1n), await held(5n, 1n)]);
    again.putMany([await held(5n, 2n)]);
    again.remove(5n);
    assert.deepEqual(await segments(), ["seg-2.bin", "seg-3.bin", "seg-4.bin", "seg-6.bin"]);
    const third = (await SealedVaultStore.open(dir, key)).store;
    assert.equal(third.get(5n), undefined);
    assert.equal(third.get(4n)?.version, 1n);
    // The next segment number continues after the last one on disk.
    third.putMany([await held(6n, 1n)]);
    assert.ok((await segments()).includes("seg-7.bin"));
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
