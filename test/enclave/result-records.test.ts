import { test } from "node:test";
import assert from "node:assert/strict";
import { CryptoError } from "../../src/crypto/errors.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import {
  decryptResult,
  encryptResult,
  MIN_PADDED_RECORD_BYTES,
  paddedRecordLength,
  parseResultRecord,
  serializeResultRecord,
  type ResultRecord,
} from "../../src/protocol/result.ts";
import { bindingFor } from "./task-fixture.ts";

const usage = { wallMs: 1.5, cpuMs: 1.25, outputBytes: 3 };

test("result records roundtrip through serialization and encryption", async () => {
  const ok: ResultRecord = { outcome: "ok", output: new Uint8Array([1, 2, 3]), usage };
  const err: ResultRecord = { outcome: "error", error: { code: "PROGRAM_THREW", message: "program threw: boom" }, usage: { ...usage, outputBytes: 0 } };
  assert.deepEqual(parseResultRecord(serializeResultRecord(ok)), ok);
  assert.deepEqual(parseResultRecord(serializeResultRecord(err)), err);
  const requester = await generateHpkeKeyPair();
  const binding = bindingFor(5n);
  assert.deepEqual(await decryptResult(requester.privateKey, binding, await encryptResult(requester.publicKey, binding, ok)), ok);
  assert.deepEqual(await decryptResult(requester.privateKey, binding, await encryptResult(requester.publicKey, binding, err)), err);
});

test("a result for another task, another key, or altered does not decrypt", async () => {
  const requester = await generateHpkeKeyPair();
  const other = await generateHpkeKeyPair();
  const binding = bindingFor(5n);
  const blob = await encryptResult(requester.publicKey, binding, { outcome: "ok", output: new Uint8Array(100), usage });
  const code = (c: string) => (e: unknown) => e instanceof CryptoError && e.code === c;
  await assert.rejects(decryptResult(requester.privateKey, bindingFor(6n), blob), code("DECRYPTION_FAILED"));
  await assert.rejects(decryptResult(other.privateKey, binding, blob), code("DECRYPTION_FAILED"));
  const altered = blob.slice();
  altered[altered.length - 3]! ^= 1;
  await assert.rejects(decryptResult(requester.privateKey, binding, altered), code("DECRYPTION_FAILED"));
  await assert.rejects(decryptResult(requester.privateKey, binding, blob.subarray(0, 50)), code("MALFORMED_CIPHERTEXT"));
});

test("a result record is padded to its bucket with zero bytes, and the padding is removed and checked on parsing", () => {
  const ok: ResultRecord = { outcome: "ok", output: new Uint8Array(3000).fill(7), usage: { ...usage, outputBytes: 3000 } };
  const bytes = serializeResultRecord(ok);
  assert.equal(bytes.length, paddedRecordLength(bytes.length));
  assert.ok(bytes.length > 3000 && bytes.length <= 3000 * 1.13 + 200);
  assert.deepEqual(parseResultRecord(bytes), ok);
  const dirty = bytes.slice();
  dirty[dirty.length - 1] = 1;
  assert.throws(() => parseResultRecord(dirty), (e: unknown) => e instanceof CryptoError && /padding/.test(e.message));
  for (const n of [1, 512, 513, 4096, 5000, 1 << 20, (1 << 20) + 1]) {
    const padded = paddedRecordLength(n);
    assert.ok(padded >= n && padded >= MIN_PADDED_RECORD_BYTES && padded <= Math.max(MIN_PADDED_RECORD_BYTES, n * 1.125), `${n} → ${padded}`);
  }
  assert.equal(paddedRecordLength(581), paddedRecordLength(608), "nearby lengths share a bucket");
});
