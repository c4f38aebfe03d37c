import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { generateDataKey, openStream, sealStream } from "../../src/crypto/aead-stream.ts";
import { CryptoError } from "../../src/crypto/errors.ts";

const HEADER = 17;
const TAG = 16;
const aad = new TextEncoder().encode("cloister/test-aad");

function rejects(fn: () => unknown, code: string, match?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return true;
  });
}

test("roundtrips payloads of many sizes, including empty and exact multiples of the chunk size", () => {
  const key = generateDataKey();
  for (const size of [0, 1, 15, 16, 17, 64, 100, 1000]) {
    const pt = new Uint8Array(randomBytes(size));
    const sealed = sealStream(key, pt, { aad, chunkSize: 16 });
    assert.equal(sealed.length, HEADER + size + Math.max(1, Math.ceil(size / 16)) * TAG);
    assert.deepEqual(openStream(key, sealed, { aad }), pt);
  }
});

test("roundtrips a multi-megabyte payload with the default chunk size", () => {
  const key = generateDataKey();
  const pt = new Uint8Array(randomBytes(3 * 1024 * 1024 + 7));
  assert.deepEqual(openStream(key, sealStream(key, pt)), pt);
});

test("two seals of the same plaintext differ (fresh nonce prefix)", () => {
  const key = generateDataKey();
  const pt = new Uint8Array(32);
  assert.notDeepEqual(sealStream(key, pt), sealStream(key, pt));
});

test("a bit flip anywhere is detected: header, chunk body, tag", () => {
  const key = generateDataKey();
  const sealed = sealStream(key, new Uint8Array(randomBytes(80)), { aad, chunkSize: 32 });
  for (const at of [4, 5, 8, 9, 16, HEADER, HEADER + 31, HEADER + 32, HEADER + 47, HEADER + 48 + 5, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at]! ^= 0x01;
    assert.throws(() => openStream(key, bad, { aad }), CryptoError, `flip at byte ${at} went unnoticed`);
  }
  const magic = sealed.slice();
  magic[0]! ^= 0xff;
  rejects(() => openStream(key, magic, { aad }), "MALFORMED_CIPHERTEXT", /magic/);
  const version = sealed.slice();
  version[4] = 9;
  rejects(() => openStream(key, version, { aad }), "MALFORMED_CIPHERTEXT", /version 9/);
  const body = sealed.slice();
  body[HEADER + 48 + 3]! ^= 0x80;
  rejects(() => openStream(key, body, { aad, label: "input ciphertext" }), "DECRYPTION_FAILED", /^input ciphertext failed authentication at chunk 1/);
});

test("truncation at a chunk boundary, inside a chunk, and below the header is detected", () => {
  const key = generateDataKey();
  const sealed = sealStream(key, new Uint8Array(randomBytes(64)), { aad, chunkSize: 16 });
  rejects(() => openStream(key, sealed.subarray(0, sealed.length - (16 + TAG)), { aad }), "TRUNCATED", /chunk 2/);
  assert.throws(() => openStream(key, sealed.subarray(0, sealed.length - 5), { aad }), CryptoError);
  rejects(() => openStream(key, sealed.subarray(0, HEADER + 3), { aad }), "TRUNCATED");
  rejects(() => openStream(key, sealed.subarray(0, 10), { aad }), "TRUNCATED");
});

test("extension with another chunk or with trailing bytes is detected", () => {
  const key = generateDataKey();
  const sealed = sealStream(key, new Uint8Array(randomBytes(32)), { aad, chunkSize: 16 });
  const lastChunk = sealed.subarray(sealed.length - (16 + TAG));
  const extended = new Uint8Array([...sealed, ...lastChunk]);
  rejects(() => openStream(key, extended, { aad }), "MALFORMED_CIPHERTEXT", /extended/);
  assert.throws(() => openStream(key, new Uint8Array([...sealed, 1, 2, 3]), { aad }), CryptoError);
});

test("swapping or reordering chunks is detected", () => {
  const key = generateDataKey();
  const sealed = sealStream(key, new Uint8Array(randomBytes(48)), { aad, chunkSize: 16 });
  const c = 16 + TAG;
  const swapped = sealed.slice();
  swapped.set(sealed.subarray(HEADER + c, HEADER + 2 * c), HEADER);
  swapped.set(sealed.subarray(HEADER, HEADER + c), HEADER + c);
  rejects(() => openStream(key, swapped, { aad }), "DECRYPTION_FAILED", /chunk 0/);
});

test("a chunk from another stream under the same key is refused", () => {
  const key = generateDataKey();
  const a = sealStream(key, new Uint8Array(32), { aad, chunkSize: 16 });
  const b = sealStream(key, new Uint8Array(32), { aad, chunkSize: 16 });
  const mixed = a.slice();
  mixed.set(b.subarray(HEADER + 32), HEADER + 32);
  rejects(() => openStream(key, mixed, { aad }), "DECRYPTION_FAILED", /chunk 1/);
});

test("wrong AAD, missing AAD and wrong key are refused", () => {
  const key = generateDataKey();
  const sealed = sealStream(key, new TextEncoder().encode("secret"), { aad });
  rejects(() => openStream(key, sealed, { aad: new TextEncoder().encode("cloister/other") }), "DECRYPTION_FAILED");
  rejects(() => openStream(key, sealed), "DECRYPTION_FAILED");
  rejects(() => openStream(generateDataKey(), sealed, { aad }), "DECRYPTION_FAILED");
});

test("bad keys and chunk sizes are rejected with typed errors", () => {
  rejects(() => sealStream(new Uint8Array(16), new Uint8Array(1)), "INVALID_KEY");
  rejects(() => sealStream(generateDataKey(), new Uint8Array(1), { chunkSize: 3 }), "INVALID_ARGUMENT");
});
