/**
 * src/crypto/hpke.ts against @hpke/core, the reference implementation of the
 * same suite (DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, base mode).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { sealBase } from "../../src/crypto/hpke-base.ts";
import { generateHpkeKeyPair, hpkePublicKeyOf, openContextWith, openWith, sealContextTo, sealTo } from "../../src/crypto/hpke.ts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { taskKeyInfo, taskResultInfo } from "../../src/protocol/binding.ts";

const reference = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const binding = { chainId: 31337n, market: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const, taskId: 7n };
const terms = { programDigest: `0x${"11".repeat(32)}` as const, resultKey: new Uint8Array(32).fill(7) };

const ab = (bytes: Uint8Array): ArrayBuffer => bytes.slice().buffer as ArrayBuffer;

const SIZES = [0, 1, 32, 1000, 70_000];
const INFOS = [new Uint8Array(0), taskKeyInfo(binding, terms), new Uint8Array(randomBytes(300))];
const AADS = [undefined, new Uint8Array([1, 2, 3]), new Uint8Array(randomBytes(200))];

function* cases() {
  for (const size of SIZES) for (const info of INFOS) for (const aad of AADS) yield { pt: new Uint8Array(randomBytes(size)), info, aad };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof CryptoError && e.code === code);
}

test("what sealTo seals, @hpke/core opens", async () => {
  const kp = await generateHpkeKeyPair();
  const recipientKey = await reference.kem.deserializePrivateKey(ab(kp.privateKey));
  for (const { pt, info, aad } of cases()) {
    const { enc, ciphertext } = await sealTo(kp.publicKey, pt, { info, aad });
    assert.equal(ciphertext.length, pt.length + 16);
    const opened = await reference.open({ recipientKey, enc: ab(enc), info: ab(info) }, ab(ciphertext), aad && ab(aad));
    assert.deepEqual(new Uint8Array(opened), pt, `size ${pt.length}, info ${info.length}, aad ${aad?.length}`);
  }
});

test("what @hpke/core seals, openWith opens; wrong info, aad or key fail with DECRYPTION_FAILED", async () => {
  const kp = await generateHpkeKeyPair();
  const other = await generateHpkeKeyPair();
  const recipientPublicKey = await reference.kem.deserializePublicKey(ab(kp.publicKey));
  for (const { pt, info, aad } of cases()) {
    const sealed = await reference.seal({ recipientPublicKey, info: ab(info) }, ab(pt), aad && ab(aad));
    const enc = new Uint8Array(sealed.enc);
    const ct = new Uint8Array(sealed.ct);
    assert.deepEqual(await openWith(kp.privateKey, enc, ct, { info, aad }), pt, `size ${pt.length}, info ${info.length}, aad ${aad?.length}`);
  }
  const info = taskKeyInfo(binding, terms);
  const aad = new Uint8Array([9]);
  const sealed = await reference.seal({ recipientPublicKey, info: ab(info) }, ab(new Uint8Array(32)), ab(aad));
  const enc = new Uint8Array(sealed.enc);
  const ct = new Uint8Array(sealed.ct);
  await rejectsWith(openWith(kp.privateKey, enc, ct, { info: taskResultInfo(binding), aad }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ct, { info: taskKeyInfo({ ...binding, taskId: 8n }, terms), aad }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ct, { info, aad: new Uint8Array([8]) }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc, ct, { info }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(other.privateKey, enc, ct, { info, aad }), "DECRYPTION_FAILED");
  await rejectsWith(openWith(kp.privateKey, enc.subarray(1), ct, { info, aad }), "MALFORMED_CIPHERTEXT");
});

test("with the same ephemeral key, sealBase and @hpke/core produce identical enc and ciphertext", async () => {
  const recipient = await generateHpkeKeyPair();
  const recipientPublicKey = await reference.kem.deserializePublicKey(ab(recipient.publicKey));
  for (const { pt, info, aad } of cases()) {
    const ephemeral = await generateHpkeKeyPair();
    const ekm = {
      privateKey: await reference.kem.deserializePrivateKey(ab(ephemeral.privateKey)),
      publicKey: await reference.kem.deserializePublicKey(ab(ephemeral.publicKey)),
    };
    const expected = await reference.seal({ recipientPublicKey, info: ab(info), ekm }, ab(pt), aad && ab(aad));
    const ours = sealBase(recipient.publicKey, info, aad ?? new Uint8Array(0), pt, ephemeral.privateKey);
    assert.deepEqual(ours.enc, new Uint8Array(expected.enc));
    assert.deepEqual(ours.ciphertext, new Uint8Array(expected.ct), `size ${pt.length}, info ${info.length}, aad ${aad?.length}`);
  }
});

test("hpkePublicKeyOf derives the public key @hpke/core pairs with a private key", async () => {
  for (let i = 0; i < 5; i++) {
    const kp = await reference.kem.generateKeyPair();
    const privateKey = new Uint8Array(await reference.kem.serializePrivateKey(kp.privateKey));
    const publicKey = new Uint8Array(await reference.kem.serializePublicKey(kp.publicKey));
    assert.deepEqual(await hpkePublicKeyOf(privateKey), publicKey);
  }
});

test("a context's messages (seq 0, 1, 2, …) open in @hpke/core's recipient context, and the reverse, in any order here", async () => {
  const kp = await generateHpkeKeyPair();
  const info = taskKeyInfo(binding, terms);
  const messages = [0, 1, 32, 1000].map((size) => ({ pt: new Uint8Array(randomBytes(size)), aad: new Uint8Array(randomBytes(8)) }));

  const ours = sealContextTo(kp.publicKey, info);
  const sealed = messages.map((m) => ours.seal(m.pt, m.aad));
  assert.deepEqual(sealed.map((s) => s.seq), [0, 1, 2, 3]);
  const recipient = await reference.createRecipientContext({ recipientKey: await reference.kem.deserializePrivateKey(ab(kp.privateKey)), enc: ab(ours.enc), info: ab(info) });
  for (const [i, s] of sealed.entries()) assert.deepEqual(new Uint8Array(await recipient.open(ab(s.ciphertext), ab(messages[i]!.aad))), messages[i]!.pt, `message ${i}`);

  const sender = await reference.createSenderContext({ recipientPublicKey: await reference.kem.deserializePublicKey(ab(kp.publicKey)), info: ab(info) });
  const theirs: Uint8Array[] = [];
  for (const m of messages) theirs.push(new Uint8Array(await sender.seal(ab(m.pt), ab(m.aad))));
  const opener = openContextWith(kp.privateKey, new Uint8Array(sender.enc), info);
  for (const i of [3, 0, 2, 1]) assert.deepEqual(opener.open(i, theirs[i]!, messages[i]!.aad), messages[i]!.pt, `message ${i}`);
  // A ciphertext under another sequence number, or with another message's AAD, does not authenticate.
  assert.throws(() => opener.open(1, theirs[0]!, messages[0]!.aad), (e: unknown) => e instanceof CryptoError && e.code === "DECRYPTION_FAILED");
  assert.throws(() => opener.open(0, theirs[0]!, messages[1]!.aad), (e: unknown) => e instanceof CryptoError && e.code === "DECRYPTION_FAILED");
  assert.throws(() => opener.open(-1, theirs[0]!, messages[0]!.aad), (e: unknown) => e instanceof CryptoError && e.code === "MALFORMED_CIPHERTEXT");
  assert.throws(() => openContextWith(kp.privateKey, new Uint8Array(31), info), (e: unknown) => e instanceof CryptoError && e.code === "MALFORMED_CIPHERTEXT");
});
