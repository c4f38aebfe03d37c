import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes, recoverAddress, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { SignerKeyCache } from "../../src/crypto/secp256k1-signers.ts";

const N = secp256k1.Point.CURVE().n;

async function signed(account: PrivateKeyAccount, digest = new Uint8Array(randomBytes(32))): Promise<{ digest: Uint8Array; signature: Uint8Array }> {
  return { digest, signature: hexToBytes(await account.sign({ hash: bytesToHex(digest) })) };
}

/** The same signature with s → n - s and v flipped: recovers the same key. */
function highS(signature: Uint8Array): Uint8Array {
  const out = signature.slice();
  const s = BigInt(bytesToHex(signature.subarray(32, 64)));
  out.set(hexToBytes(`0x${(N - s).toString(16).padStart(64, "0")}`), 32);
  out[64] = signature[64] === 27 ? 28 : 27;
  return out;
}

function flipV(signature: Uint8Array): Uint8Array {
  const out = signature.slice();
  out[64] = signature[64] === 27 ? 28 : 27;
  return out;
}

/** What recovering with viem and comparing addresses says, the behaviour the cache must keep. */
async function recoveryAccepts(digest: Uint8Array, signature: Uint8Array, expected: Hex): Promise<boolean> {
  try {
    return (await recoverAddress({ hash: bytesToHex(digest), signature: bytesToHex(signature) })).toLowerCase() === expected.toLowerCase();
  } catch {
    return false;
  }
}

test("the first check derives the recovered key's address and remembers the key; the next ones match it without hashing", async () => {
  const cache = new SignerKeyCache();
  const account = privateKeyToAccount(generatePrivateKey());
  const first = await signed(account);
  assert.deepEqual(cache.check(first.digest, first.signature, account.address), { ok: true });
  assert.deepEqual(cache.stats, { keys: 1, keyMatches: 0, addressDerivations: 1 });
  for (let i = 0; i < 3; i++) {
    const next = await signed(account);
    assert.deepEqual(cache.check(next.digest, next.signature, account.address.toLowerCase()), { ok: true });
  }
  assert.deepEqual(cache.stats, { keys: 1, keyMatches: 3, addressDerivations: 1 });
});

test("for a remembered address, another key's signature, a tampered digest and the other v are refused with the recovered address", async () => {
  const cache = new SignerKeyCache();
  const account = privateKeyToAccount(generatePrivateKey());
  const stranger = privateKeyToAccount(generatePrivateKey());
  const warm = await signed(account);
  cache.check(warm.digest, warm.signature, account.address);
  cache.check(warm.digest, warm.signature, account.address);

  const foreign = await signed(stranger);
  assert.deepEqual(cache.check(foreign.digest, foreign.signature, account.address), { ok: false, recovered: stranger.address.toLowerCase() });

  const tampered = warm.digest.slice();
  tampered[0]! ^= 1;
  const onTampered = cache.check(tampered, warm.signature, account.address);
  assert.equal(onTampered.ok, false);
  assert.notEqual(!onTampered.ok && onTampered.recovered, account.address.toLowerCase());

  const otherV = cache.check(warm.digest, flipV(warm.signature), account.address);
  assert.equal(otherV.ok, false);
  assert.equal(await recoveryAccepts(warm.digest, flipV(warm.signature), account.address), false);
  // Each refusal recovered another key than the remembered one, and hashed it for the address it reports.
  assert.deepEqual(cache.stats, { keys: 1, keyMatches: 1, addressDerivations: 4 });
});

test("the other v is refused on the first check too, so the verdict never depends on the cache", async () => {
  const cache = new SignerKeyCache();
  const account = privateKeyToAccount(generatePrivateKey());
  const { digest, signature } = await signed(account);
  assert.equal(cache.check(digest, flipV(signature), account.address).ok, false);
  assert.equal(cache.stats.keys, 0);
});

test("high s is accepted with its matching v and refused with the other, on both paths, as viem's recovery does", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const { digest, signature } = await signed(account);
  const high = highS(signature);
  assert.equal(await recoveryAccepts(digest, high, account.address), true);
  assert.equal(await recoveryAccepts(digest, flipV(high), account.address), false);

  const cold = new SignerKeyCache();
  assert.equal(cold.check(digest, high, account.address).ok, true);
  const warm = new SignerKeyCache();
  warm.check(digest, signature, account.address);
  assert.equal(warm.check(digest, high, account.address).ok, true);
  assert.equal(warm.check(digest, flipV(high), account.address).ok, false);
  assert.deepEqual(warm.stats, { keys: 1, keyMatches: 1, addressDerivations: 2 }); // the acceptance matched the remembered key; the refusal did not
});

test("v may be 0/1 or 27/28; any other v, a wrong length or r, s out of range recovers nothing", async () => {
  const cache = new SignerKeyCache();
  const account = privateKeyToAccount(generatePrivateKey());
  const { digest, signature } = await signed(account);
  const parity = signature.slice();
  parity[64] = signature[64]! - 27;
  assert.equal(cache.check(digest, parity, account.address).ok, true);
  assert.equal(cache.check(digest, parity, account.address).ok, true);

  const v2 = signature.slice();
  v2[64] = 2;
  const zeroR = signature.slice();
  zeroR.fill(0, 0, 32);
  const bigS = signature.slice();
  bigS.set(hexToBytes(`0x${N.toString(16)}`), 32);
  for (const bad of [v2, zeroR, bigS, signature.subarray(0, 64)]) {
    assert.deepEqual(cache.check(digest, bad, account.address), { ok: false, recovered: undefined });
  }
});

test("cold and warm checks agree with viem's recovery on random corruptions", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const warm = new SignerKeyCache();
  const seed = await signed(account);
  warm.check(seed.digest, seed.signature, account.address);
  for (let i = 0; i < 40; i++) {
    const { digest, signature } = await signed(account);
    const variant = [signature, flipV(signature), highS(signature), flipV(highS(signature))][i % 4]!.slice();
    if (i % 3 === 0) variant[(i * 7) % 64]! ^= 1 << i % 8;
    const expected = await recoveryAccepts(digest, variant, account.address);
    assert.equal(new SignerKeyCache().check(digest, variant, account.address).ok, expected, `cold, case ${i}`);
    assert.equal(warm.check(digest, variant, account.address).ok, expected, `warm, case ${i}`);
  }
});

test("the cache is bounded: the least recently used address is forgotten", async () => {
  const cache = new SignerKeyCache({ maxKeys: 2 });
  const accounts = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()));
  const checkBy = async (a: PrivateKeyAccount) => {
    const { digest, signature } = await signed(a);
    assert.equal(cache.check(digest, signature, a.address).ok, true);
  };
  await checkBy(accounts[0]!);
  await checkBy(accounts[1]!);
  await checkBy(accounts[0]!); // 0 is now the most recently used
  await checkBy(accounts[2]!); // forgets 1
  await checkBy(accounts[0]!);
  assert.deepEqual(cache.stats, { keys: 2, keyMatches: 2, addressDerivations: 3 });
  await checkBy(accounts[1]!);
  assert.deepEqual(cache.stats, { keys: 2, keyMatches: 2, addressDerivations: 4 });
});

test("a cache too small for its signers forgets and re-derives, and its verdicts stay right", async () => {
  const cache = new SignerKeyCache({ maxKeys: 1 });
  const [a, b] = [0, 1].map(() => privateKeyToAccount(generatePrivateKey()));
  const byA = await signed(a!);
  const byB = await signed(b!);
  for (let i = 0; i < 3; i++) {
    assert.equal(cache.check(byA.digest, byA.signature, a!.address).ok, true);
    assert.equal(cache.check(byB.digest, byB.signature, b!.address).ok, true);
    assert.deepEqual(cache.check(byB.digest, byB.signature, a!.address), { ok: false, recovered: b!.address.toLowerCase() });
    assert.equal(cache.check(byA.digest, flipV(byA.signature), a!.address).ok, false);
  }
  // With room for one key, a's and b's keys evict each other: every check hashed the key it recovered.
  assert.deepEqual(cache.stats, { keys: 1, keyMatches: 0, addressDerivations: 12 });
  assert.equal(cache.check(byB.digest, byB.signature, b!.address).ok, true); // b was remembered last
  assert.deepEqual(cache.stats, { keys: 1, keyMatches: 1, addressDerivations: 12 });
});

test("a digest that is not 32 bytes, an expected value that is not an address and a zero bound are refused", async () => {
  const cache = new SignerKeyCache();
  const account = privateKeyToAccount(generatePrivateKey());
  const { digest, signature } = await signed(account);
  const invalid = (e: unknown) => e instanceof CryptoError && e.code === "INVALID_ARGUMENT";
  assert.throws(() => cache.check(digest.subarray(1), signature, account.address), invalid);
  assert.throws(() => cache.check(digest, signature, "0x1234"), invalid);
  assert.throws(() => new SignerKeyCache({ maxKeys: 0 }), invalid);
});
