import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import {
  decapsulate,
  encapsulate,
  HPKE_SUITE,
  hmacSha256,
  keyScheduleBase,
  keyScheduleSuite,
  labeledExpand,
  x25519PublicKeyOf,
} from "../../src/crypto/hpke-base.ts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { openWith, sealTo } from "../../src/crypto/hpke.ts";

const hex = (s: string) => Buffer.from(s, "hex");

/**
 * RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-128-GCM, mode_base. The appendix has no vector for AES-256-GCM; the KEM
 * values do not depend on the AEAD, and the key schedule's do only through
 * suite_id (aead_id) and Nk, which keyScheduleSuite takes as parameters.
 */
const A11 = {
  info: hex("4f6465206f6e2061204772656369616e2055726e"),
  skEm: hex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736"),
  pkEm: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
  skRm: hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"),
  pkRm: hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"),
  sharedSecret: hex("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"),
  keyScheduleContext: hex(
    "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07cb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449",
  ),
  secret: hex("12fff91991e93b48de37e7daddb52981084bd8aa64289c3788471d9a9712f397"),
  key: hex("4531685d41d65f03dc48f6b8302c05b0"),
  baseNonce: hex("56d890e5accaaf011cff4b7d"),
};

/** X25519 points of small order: the DH output with any private key is all zeros. */
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
].map(hex);

test("RFC 9180 A.1.1: key pairs, Encap with the vector's ephemeral key, and Decap", () => {
  assert.deepEqual(Buffer.from(x25519PublicKeyOf(A11.skEm)), A11.pkEm);
  assert.deepEqual(Buffer.from(x25519PublicKeyOf(A11.skRm)), A11.pkRm);
  const { sharedSecret, enc } = encapsulate(A11.pkRm, A11.skEm);
  assert.deepEqual(enc, A11.pkEm);
  assert.deepEqual(sharedSecret, A11.sharedSecret);
  assert.deepEqual(decapsulate(A11.pkEm, A11.skRm), A11.sharedSecret);
});

test("RFC 9180 A.1.1: the base-mode key schedule under the vector's suite (aead_id 1, Nk 16)", () => {
  const ks = keyScheduleBase(A11.sharedSecret, A11.info, keyScheduleSuite(0x0001, 16));
  assert.deepEqual(ks.keyScheduleContext, A11.keyScheduleContext);
  assert.deepEqual(ks.secret, A11.secret);
  assert.deepEqual(ks.key, A11.key);
  assert.deepEqual(ks.baseNonce, A11.baseNonce);
});

test("the suite in use is HPKE ‖ 0x0020 ‖ 0x0001 ‖ 0x0002 with a 32-byte AES key and a 12-byte nonce", () => {
  assert.deepEqual(Buffer.from(HPKE_SUITE.suiteId), Buffer.from("48504b45002000010002", "hex"));
  const ks = keyScheduleBase(A11.sharedSecret, A11.info);
  assert.equal(ks.key.length, 32);
  assert.equal(ks.baseNonce.length, 12);
  assert.notDeepEqual(ks.keyScheduleContext, A11.keyScheduleContext, "suite_id must enter psk_id_hash and info_hash");
});

test("hmacSha256 equals node's HMAC for every key length it accepts, and refuses longer keys", () => {
  for (const keyLength of [0, 1, 32, 64]) {
    const key = randomBytes(keyLength);
    const a = randomBytes(17);
    const b = randomBytes(100);
    assert.deepEqual(hmacSha256(key, a, b), createHmac("sha256", key).update(a).update(b).digest(), `key length ${keyLength}`);
  }
  assert.throws(() => hmacSha256(randomBytes(65), randomBytes(1)), RangeError);
});

test("LabeledExpand refuses lengths beyond one block (the suite needs at most 32 bytes)", () => {
  assert.throws(() => labeledExpand(HPKE_SUITE.suiteId, randomBytes(32), "key", new Uint8Array(0), 33), RangeError);
  assert.throws(() => labeledExpand(HPKE_SUITE.suiteId, randomBytes(32), "key", new Uint8Array(0), 0), RangeError);
});

test("an all-zero X25519 shared secret is refused (RFC 9180 §7.1.4)", async () => {
  for (const point of LOW_ORDER_POINTS) {
    assert.throws(() => encapsulate(point), (e: unknown) => e instanceof CryptoError && e.code === "INVALID_KEY");
    assert.throws(() => decapsulate(point, A11.skRm), (e: unknown) => e instanceof CryptoError && e.code === "INVALID_KEY");
    await assert.rejects(sealTo(point, new Uint8Array(32), { info: A11.info }), (e: unknown) => e instanceof CryptoError && e.code === "INVALID_KEY");
    await assert.rejects(
      openWith(A11.skRm, point, new Uint8Array(48), { info: A11.info }),
      (e: unknown) => e instanceof CryptoError && e.code === "DECRYPTION_FAILED",
    );
  }
});

test("ciphertexts shorter than the GCM tag are refused with DECRYPTION_FAILED", async () => {
  const { enc } = await sealTo(A11.pkRm, new Uint8Array(0), { info: A11.info });
  for (const length of [0, 1, 15]) {
    await assert.rejects(
      openWith(A11.skRm, enc, new Uint8Array(length), { info: A11.info }),
      (e: unknown) => e instanceof CryptoError && e.code === "DECRYPTION_FAILED",
    );
  }
});

test("a private key array overwritten in place opens with its new key, not a kept one", async () => {
  const info = Buffer.from("key-object cache");
  const first = randomBytes(32);
  const second = randomBytes(32);
  const toFirst = await sealTo(x25519PublicKeyOf(first), Buffer.from("for the first key"), { info });
  const toSecond = await sealTo(x25519PublicKeyOf(second), Buffer.from("for the second key"), { info });
  const key = new Uint8Array(first);
  assert.equal(Buffer.from(await openWith(key, toFirst.enc, toFirst.ciphertext, { info })).toString(), "for the first key");
  key.set(second);
  assert.equal(Buffer.from(await openWith(key, toSecond.enc, toSecond.ciphertext, { info })).toString(), "for the second key");
  await assert.rejects(openWith(key, toFirst.enc, toFirst.ciphertext, { info }), (e: unknown) => e instanceof CryptoError && e.code === "DECRYPTION_FAILED");
});

test("sealing to more recipients than the kept public keys still reaches each one", async () => {
  const info = Buffer.from("recipient cache");
  const recipients = Array.from({ length: 300 }, () => randomBytes(32));
  const sealed = await Promise.all(recipients.map((sk, i) => sealTo(x25519PublicKeyOf(sk), Buffer.from(`message ${i}`), { info })));
  // The earliest recipients were forgotten by now and are made again; each opens only its own message.
  for (const i of [0, 1, 150, 299]) {
    assert.equal(Buffer.from(await openWith(recipients[i]!, sealed[i]!.enc, sealed[i]!.ciphertext, { info })).toString(), `message ${i}`);
  }
  await assert.rejects(openWith(recipients[1]!, sealed[0]!.enc, sealed[0]!.ciphertext, { info }), (e: unknown) => e instanceof CryptoError);
});
