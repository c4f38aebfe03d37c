import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256 } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { CryptoError } from "../../src/crypto/errors.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import {
  buildStatement,
  pae,
  parseStatement,
  PAYLOAD_TYPE,
  PREDICATE_TYPE,
  PREDICATE_TYPE_V1,
  type ProvenanceStatement,
  ProvenanceError,
  signEnvelope,
  verifyEnvelope,
  verifyProvenance,
  type StatementInput,
} from "../../src/protocol/provenance.ts";
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

function statementInput(signer: `0x${string}`): StatementInput {
  return {
    binding: bindingFor(77n),
    outputDigest: sha256(new Uint8Array([1])),
    programDigest: sha256(new Uint8Array([2])),
    inputDigests: [{ name: "input", digest: sha256(new Uint8Array([3])) }],
    envelopeDigest: sha256(new Uint8Array([4])),
    enclave: { signer, hpkePublicKey: `0x${"cd".repeat(32)}`, measurement: "ab".repeat(32), teeType: "SGX", simulated: true, evidenceCid: "bafy-evidence" },
    limits: { memoryMb: 64, timeoutMs: 5000, maxOutputBytes: 1024 },
    startedOn: new Date("2025-01-01T00:00:00Z"),
    finishedOn: new Date("2025-01-01T00:00:01Z"),
  };
}

test("PAE matches the DSSE spec's example encoding", () => {
  assert.equal(new TextDecoder().decode(pae("http://example.com/HelloWorld", new TextEncoder().encode("hello world"))), "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
});

test("a signed statement verifies for its signer and is an in-toto v1 statement", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const statement = buildStatement(statementInput(account.address));
  assert.equal(statement._type, "https://in-toto.io/Statement/v1");
  assert.equal(statement.subject[0]?.digest.sha256, sha256(new Uint8Array([1])).slice(2));
  const envelope = await signEnvelope(statement, account);
  const parsed = JSON.parse(new TextDecoder().decode(envelope)) as { payloadType: string; signatures: { keyid: string }[] };
  assert.equal(parsed.payloadType, PAYLOAD_TYPE);
  assert.equal(parsed.signatures[0]?.keyid, account.address);
  assert.deepEqual(await verifyProvenance(envelope, account.address), statement);
  const { payload } = await verifyEnvelope(envelope, account.address);
  assert.deepEqual(parseStatement(payload), statement);
});

test("another signer, an altered payload, a wrong payload type and garbage are refused", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const stranger = privateKeyToAccount(generatePrivateKey());
  const envelope = await signEnvelope(buildStatement(statementInput(account.address)), account);
  const code = (c: string) => (e: unknown) => e instanceof ProvenanceError && e.code === c;
  await assert.rejects(verifyProvenance(envelope, stranger.address), code("SIGNER_MISMATCH"));

  const doc = JSON.parse(new TextDecoder().decode(envelope)) as { payload: string; payloadType: string };
  const stmt = JSON.parse(Buffer.from(doc.payload, "base64").toString()) as { predicate: { outcome: string } };
  stmt.predicate.outcome = "error";
  const forged = { ...doc, payload: Buffer.from(JSON.stringify(stmt)).toString("base64") };
  await assert.rejects(verifyProvenance(new TextEncoder().encode(JSON.stringify(forged)), account.address), code("SIGNER_MISMATCH"));
  await assert.rejects(
    verifyProvenance(new TextEncoder().encode(JSON.stringify({ ...doc, payloadType: "text/plain" })), account.address),
    code("WRONG_PAYLOAD_TYPE"),
  );
  await assert.rejects(verifyProvenance(new TextEncoder().encode("{"), account.address), code("MALFORMED_ENVELOPE"));
  assert.throws(() => parseStatement(new TextEncoder().encode('{"_type":"x"}')), code("MALFORMED_STATEMENT"));
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

test("a statement says when the run started and finished to the whole second, and nothing of its outcome or resource use", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const statement = buildStatement({ ...statementInput(account.address), startedOn: new Date("2025-01-01T00:00:00.750Z"), finishedOn: new Date("2025-01-01T00:00:01.020Z") });
  assert.equal(statement.predicateType, PREDICATE_TYPE);
  assert.equal(statement.predicate.startedOn, "2025-01-01T00:00:00.000Z");
  assert.equal(statement.predicate.finishedOn, "2025-01-01T00:00:02.000Z");
  assert.deepEqual(Object.keys(statement.predicate).sort(), ["enclave", "envelope", "finishedOn", "inputs", "limits", "program", "startedOn", "task"]);
});

test("a statement of predicate v1, which named the outcome and resource use, still verifies", async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const v2 = buildStatement(statementInput(account.address));
  const v1 = { ...v2, predicateType: PREDICATE_TYPE_V1, predicate: { ...v2.predicate, resourceUse: usage, outcome: "ok" } } as ProvenanceStatement;
  const parsed = await verifyProvenance(await signEnvelope(v1, account), account.address);
  assert.equal(parsed.predicateType, PREDICATE_TYPE_V1);
  assert.equal("outcome" in parsed.predicate && parsed.predicate.outcome, "ok");
  const mixed = { ...v2, predicate: { ...v2.predicate, outcome: "ok" } } as unknown as ProvenanceStatement;
  await assert.rejects(verifyProvenance(await signEnvelope(mixed, account), account.address), (e: unknown) => e instanceof ProvenanceError && e.code === "MALFORMED_STATEMENT");
});
