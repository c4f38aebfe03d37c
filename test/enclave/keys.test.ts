/** The sealed key set, version 2: two P-256 keys beside the secp256k1 and HPKE keys; a v1 file is upgraded in place. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { toHex } from "../../src/crypto/bytes.ts";
import { canonicalJsonBytes } from "../../src/crypto/canonical-json.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { checkP256Spki, signP256, verifyP256 } from "../../src/crypto/p256.ts";
import { loadOrCreateKeys, SEALED_KEYS_FILE } from "../../src/enclave/keys.ts";
import { seal, unseal } from "../../src/enclave/sealing.ts";
import { tempDir } from "./task-fixture.ts";

const sealingKey = new Uint8Array(32).fill(9);

test("new keys are sealed as v2 with a P-256 provenance key and a P-256 TLS key, and unseal the same", async () => {
  const dir = await tempDir("keys-v2");
  try {
    const first = await loadOrCreateKeys(dir, sealingKey);
    assert.equal(first.created, true);
    for (const k of [first.keys.provenance, first.keys.tls]) {
      checkP256Spki(k.spki);
      assert.equal(createPublicKey({ key: Buffer.from(k.spki), format: "der", type: "spki" }).asymmetricKeyDetails?.namedCurve, "prime256v1");
      const message = new TextEncoder().encode("m");
      assert.ok(verifyP256(k.spki, message, signP256(k.privateKey, message)));
    }
    assert.notDeepEqual(first.keys.provenance.spki, first.keys.tls.spki, "two distinct keys");
    const sealed = JSON.parse(new TextDecoder().decode(unseal(sealingKey, new Uint8Array(await readFile(join(dir, SEALED_KEYS_FILE))), "keys"))) as { version: number };
    assert.equal(sealed.version, 2);
    const again = await loadOrCreateKeys(dir, sealingKey);
    assert.deepEqual([again.created, again.upgraded], [false, false]);
    assert.deepEqual(again.keys.provenance.spki, first.keys.provenance.spki);
    assert.deepEqual(again.keys.tls.spki, first.keys.tls.spki);
    assert.equal(again.keys.account.address, first.keys.account.address);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a v1 file unseals with the same signer and HPKE key, gets P-256 keys and is re-sealed as v2", async () => {
  const dir = await tempDir("keys-v1");
  try {
    const signingKey = generatePrivateKey();
    const hpke = await generateHpkeKeyPair();
    await writeFile(join(dir, SEALED_KEYS_FILE), seal(sealingKey, canonicalJsonBytes({ version: 1, signingKey, hpkePrivateKey: toHex(hpke.privateKey) })));
    const upgraded = await loadOrCreateKeys(dir, sealingKey);
    assert.deepEqual([upgraded.created, upgraded.upgraded], [false, true]);
    assert.equal(upgraded.keys.account.address, privateKeyToAccount(signingKey).address, "the on-chain identity is kept");
    assert.deepEqual(upgraded.keys.hpke.publicKey, hpke.publicKey);
    const sealed = JSON.parse(new TextDecoder().decode(unseal(sealingKey, new Uint8Array(await readFile(join(dir, SEALED_KEYS_FILE))), "keys"))) as { version: number };
    assert.equal(sealed.version, 2);
    const reloaded = await loadOrCreateKeys(dir, sealingKey);
    assert.equal(reloaded.upgraded, false);
    assert.deepEqual(reloaded.keys.provenance.spki, upgraded.keys.provenance.spki, "the P-256 keys are generated once");
    assert.deepEqual(reloaded.keys.tls.spki, upgraded.keys.tls.spki);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
