import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { generateHpkeKeyPair, hpkePublicKeyOf, openWith, sealTo } from "../../src/crypto/hpke.ts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { taskKeyInfo, taskResultInfo } from "../../src/protocol/binding.ts";

const market = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const;
const binding = { chainId: 31337n, market, taskId: 7n };
const terms = { programDigest: `0x${"11".repeat(32)}` as const, resultKey: new Uint8Array(32).fill(7) };

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("key pairs are raw 32-byte X25519 keys and the public key derives from the private key", async () => {
  const kp = await generateHpkeKeyPair();
  assert.equal(kp.publicKey.length, 32);
  assert.equal(kp.privateKey.length, 32);
  assert.deepEqual(await hpkePublicKeyOf(kp.privateKey), kp.publicKey);
  assert.notDeepEqual((await generateHpkeKeyPair()).publicKey, kp.publicKey);
});

test("seal/open roundtrip with info and aad", async () => {
  const kp = await generateHpkeKeyPair();
  const pt = new Uint8Array(randomBytes(32));
  const info = taskKeyInfo(binding, terms);
  const aad = new Uint8Array([1, 2, 3]);
  const { enc, ciphertext } = await sealTo(kp.publicKey, pt, { info, aad });
  assert.equal(enc.length, 32);
  assert.equal(ciphertext.length, 32 + 16);
  assert.deepEqual(await openWith(kp.privateKey, enc, ciphertext, { info, aad }), pt);
});

test("a key wrapped for one task does not open with another task's info", async () => {
  const kp = await generateHpkeKeyPair();
  const { enc, ciphertext } = await sealTo(kp.publicKey, new Uint8Array(32), { info: taskKeyInfo(binding, terms) });
  await rejectsWith(openWith(kp.privateKey, enc, ciphertext, { info: taskKeyInfo({ ...binding, taskId: 8n }, terms) }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ciphertext, { info: taskKeyInfo({ ...binding, chainId: 1n }, terms) }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ciphertext, { info: taskResultInfo(binding) }), "DECRYPTION_FAILED");
});

test("wrong key, wrong aad, tampered ciphertext and tampered enc are refused", async () => {
  const kp = await generateHpkeKeyPair();
  const other = await generateHpkeKeyPair();
  const info = taskKeyInfo(binding, terms);
  const { enc, ciphertext } = await sealTo(kp.publicKey, new Uint8Array(32), { info, aad: new Uint8Array([9]) });
  await rejectsWith(openWith(other.privateKey, enc, ciphertext, { info, aad: new Uint8Array([9]) }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ciphertext, { info, aad: new Uint8Array([8]) }), "DECRYPTION_FAILED");
  const badCt = ciphertext.slice();
  badCt[0]! ^= 1;
  await rejectsWith(openWith(kp.privateKey, enc, badCt, { info, aad: new Uint8Array([9]) }), "DECRYPTION_FAILED");
  const badEnc = enc.slice();
  badEnc[5]! ^= 1;
  await rejectsWith(openWith(kp.privateKey, badEnc, ciphertext, { info, aad: new Uint8Array([9]) }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc.subarray(0, 31), ciphertext, { info }), "MALFORMED_CIPHERTEXT");
});

test("malformed keys are rejected with INVALID_KEY", async () => {
  await rejectsWith(sealTo(new Uint8Array(31), new Uint8Array(1), { info: new Uint8Array(0) }), "INVALID_KEY");
  await rejectsWith(openWith(new Uint8Array(33), new Uint8Array(32), new Uint8Array(20), { info: new Uint8Array(0) }), "INVALID_KEY");
});
