import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "viem";
import { generatePrivateKey, privateKeyToAccount, sign as viemSign } from "viem/accounts";
import { CryptoError } from "../../src/crypto/errors.ts";
import {
  libsecp256k1,
  nobleSecp256k1,
  publicKeyOf,
  recoverPublicKey,
  secp256k1Backend,
  signDigest,
  type RecoveryId,
  type Secp256k1Operations,
} from "../../src/crypto/secp256k1-native.ts";
import { loadOrCreateKeys } from "../../src/enclave/keys.ts";

const N = secp256k1.Point.CURVE().n;
const PREBUILT = ["linux-x64", "darwin-arm64", "win32-x64"]; // the platforms secp256k1@5's tarball ships binaries for

const backends: [string, Secp256k1Operations][] = [["noble", nobleSecp256k1], ...(libsecp256k1 ? [["libsecp256k1", libsecp256k1] as [string, Secp256k1Operations]] : [])];
const random32 = () => new Uint8Array(randomBytes(32));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function withS(signature: Uint8Array, s: bigint): Uint8Array {
  const out = signature.slice();
  out.set(hexToBytes(`0x${s.toString(16).padStart(64, "0")}`), 32);
  return out;
}
const sOf = (signature: Uint8Array) => BigInt(bytesToHex(signature.subarray(32, 64)));

test("libsecp256k1 is the backend where the package ships a prebuilt binary", () => {
  if (!PREBUILT.includes(`${process.platform}-${process.arch}`)) return;
  assert.equal(secp256k1Backend, "libsecp256k1");
  assert.ok(libsecp256k1);
});

test("signatures are byte-identical to viem's and to both backends', over random keys and digests", async () => {
  for (let i = 0; i < 200; i++) {
    const key = generatePrivateKey();
    const digest = random32();
    const viem = hexToBytes(await viemSign({ hash: bytesToHex(digest), privateKey: key, to: "hex" }));
    const { signature, recoveryId } = signDigest(digest, hexToBytes(key));
    assert.equal(hex(signature), hex(viem.subarray(0, 64)), `case ${i}`);
    assert.equal(27 + recoveryId, viem[64], `case ${i}`);
    assert.ok(sOf(signature) <= N / 2n, "low s");
    for (const [name, ops] of backends) assert.deepEqual(ops.sign(digest, hexToBytes(key)), { signature, recoveryId }, `${name}, case ${i}`);
  }
});

test("the public key is viem's account public key, on both backends", () => {
  for (let i = 0; i < 20; i++) {
    const key = generatePrivateKey();
    const expected = privateKeyToAccount(key).publicKey;
    assert.equal(bytesToHex(publicKeyOf(hexToBytes(key))), expected);
    for (const [name, ops] of backends) assert.equal(bytesToHex(ops.publicKey(hexToBytes(key))), expected, name);
  }
});

test("recovery returns the signer's key; the other recovery id and a tampered digest return another key", () => {
  for (let i = 0; i < 50; i++) {
    const key = random32();
    const digest = random32();
    const publicKey = hex(publicKeyOf(key));
    const { signature, recoveryId } = signDigest(digest, key);
    const otherId = (recoveryId ^ 1) as RecoveryId;
    const tampered = digest.slice();
    tampered[i % 32]! ^= 1 << i % 8;
    for (const [name, ops] of backends) {
      assert.equal(hex(ops.recover(signature, recoveryId, digest)!), publicKey, `${name}, case ${i}`);
      const byOtherId = ops.recover(signature, otherId, digest);
      const byTampered = ops.recover(signature, recoveryId, tampered);
      assert.ok(byOtherId && hex(byOtherId) !== publicKey, `${name}, other id, case ${i}`);
      assert.ok(byTampered && hex(byTampered) !== publicKey, `${name}, tampered, case ${i}`);
      assert.equal(hex(byOtherId), hex(nobleSecp256k1.recover(signature, otherId, digest)!), `${name} agrees with noble, case ${i}`);
      assert.equal(hex(byTampered), hex(nobleSecp256k1.recover(signature, recoveryId, tampered)!), `${name} agrees with noble, case ${i}`);
    }
    assert.equal(hex(recoverPublicKey(signature, recoveryId, digest)!), publicKey);
  }
});

test("high s recovers the same key with the flipped recovery id, and another key with the same id, on both backends", () => {
  for (let i = 0; i < 20; i++) {
    const key = random32();
    const digest = random32();
    const publicKey = hex(publicKeyOf(key));
    const { signature, recoveryId } = signDigest(digest, key);
    const high = withS(signature, N - sOf(signature));
    for (const [name, ops] of backends) {
      assert.equal(hex(ops.recover(high, (recoveryId ^ 1) as RecoveryId, digest)!), publicKey, `${name}, case ${i}`);
      const sameId = ops.recover(high, recoveryId, digest);
      assert.ok(sameId && hex(sameId) !== publicKey, `${name}, case ${i}`);
    }
  }
});

test("r or s zero or not below n, and an r that is no point's x, recover nothing on both backends", () => {
  const digest = random32();
  const { signature, recoveryId } = signDigest(digest, random32());
  const zeroR = signature.slice().fill(0, 0, 32);
  const noX = signature.slice();
  // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p).
  noX.set(hexToBytes(`0x${(5n).toString(16).padStart(64, "0")}`), 0);
  for (const bad of [zeroR, withS(signature, 0n), withS(signature, N), withS(signature, N + 1n), noX]) {
    for (const [name, ops] of backends) assert.equal(ops.recover(bad, recoveryId, digest), undefined, name);
    assert.equal(recoverPublicKey(bad, recoveryId, digest), undefined);
  }
});

test("wrong lengths, a recovery id other than 0 or 1 and an invalid private key are refused with typed errors", () => {
  const code = (c: string) => (e: unknown) => e instanceof CryptoError && e.code === c;
  const { signature } = signDigest(random32(), random32());
  assert.throws(() => signDigest(random32().subarray(1), random32()), code("INVALID_ARGUMENT"));
  assert.throws(() => signDigest(random32(), random32().subarray(1)), code("INVALID_ARGUMENT"));
  assert.throws(() => recoverPublicKey(signature.subarray(1), 0, random32()), code("INVALID_ARGUMENT"));
  assert.throws(() => recoverPublicKey(signature, 2 as RecoveryId, random32()), code("INVALID_ARGUMENT"));
  assert.throws(() => signDigest(random32(), new Uint8Array(32)), code("INVALID_KEY"));
  assert.throws(() => publicKeyOf(hexToBytes(`0x${N.toString(16)}`)), code("INVALID_KEY"));
});

test("loadOrCreateKeys gives the native-signing account (localAccount), created and unsealed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "secp256k1-native-"));
  try {
    const sealingKey = new Uint8Array(32).fill(3);
    const created = await loadOrCreateKeys(dir, sealingKey);
    const unsealed = await loadOrCreateKeys(dir, sealingKey);
    assert.equal(created.created, true);
    assert.equal(unsealed.created, false);
    const hash = bytesToHex(random32());
    const signature = await created.keys.account.sign({ hash });
    assert.equal(await unsealed.keys.account.sign({ hash }), signature);
    const recovered = recoverPublicKey(hexToBytes(signature).subarray(0, 64), (hexToBytes(signature)[64]! - 27) as RecoveryId, hexToBytes(hash));
    assert.equal(bytesToHex(recovered!), created.keys.account.publicKey);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
