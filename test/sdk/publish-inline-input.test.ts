/** publishTask inlines an encrypted input of at most maxInlineInputBytes in the envelope, and uploads a larger one. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { sha256, zeroAddress } from "viem";
import type { WriterClient } from "../../src/chain/clients.ts";
import { toHex } from "../../src/crypto/bytes.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { decodeInlineInput, maxInlineInputBytes, parseTaskEnvelope } from "../../src/protocol/task.ts";
import type { VerifiedEnclave } from "../../src/sdk/enclaves.ts";
import { prepareTask, publishTask } from "../../src/sdk/submit.ts";
import type { BlobStore } from "../../src/storage/blob-store.ts";

/** A store that keeps what was put, under a fake CID (the index of the put). */
function recordingStore() {
  const puts: Uint8Array[] = [];
  const store: BlobStore = {
    put: async (bytes) => `cid-${puts.push(bytes.slice()) - 1}`,
    putMany: async (blobs) => Promise.all(blobs.map((b) => store.put(b))),
    get: async (cid) => puts[Number(cid.slice(4))]!,
    has: async (cid) => puts[Number(cid.slice(4))] !== undefined,
    close: async () => {},
  };
  return { store, puts };
}

async function candidate(): Promise<VerifiedEnclave> {
  const keys = await generateHpkeKeyPair();
  return { signer: "0x00000000000000000000000000000000000000e1", operator: zeroAddress, hpkePublicKey: toHex(keys.publicKey), provenanceKey: "0x", tlsKey: "0x", evidenceCid: "bafy-evidence", expiry: 0n, claims: {} as VerifiedEnclave["claims"] };
}

const writer = { account: { address: "0x000000000000000000000000000000000000beef" } } as unknown as WriterClient;
const program = new TextEncoder().encode("export default function (input) { return input; }");

async function publish(input: Uint8Array) {
  const { store, puts } = recordingStore();
  const ctx = { writer, market: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const, chainId: 31337n, store };
  const prepared = await prepareTask(ctx, { program, input, candidates: [await candidate()] });
  return { published: await publishTask(ctx, prepared), puts };
}

const contains = (puts: Uint8Array[], bytes: Uint8Array) => puts.some((p) => Buffer.from(p).equals(Buffer.from(bytes)));

test("a small encrypted input travels inline: only program and envelope are uploaded", async () => {
  const { published, puts } = await publish(new TextEncoder().encode("small rows"));
  assert.ok(published.encryptedInput.length <= maxInlineInputBytes);
  assert.equal(puts.length, 2, "program and envelope only");
  assert.equal(contains(puts, published.encryptedInput), false, "the encrypted input is not a blob of its own");
  const envelope = parseTaskEnvelope(puts[1]!);
  assert.ok("inline" in envelope.input && !("cid" in envelope.input));
  assert.deepEqual(decodeInlineInput(envelope.input), published.encryptedInput);
  assert.equal(envelope.input.digest, sha256(published.encryptedInput));
  assert.equal(published.spec.inputDigest, envelope.input.digest);
  assert.equal(published.spec.envelopeDigest, sha256(puts[1]!));
});

test("an encrypted input over the limit is uploaded and named by CID", async () => {
  const { published, puts } = await publish(new Uint8Array(maxInlineInputBytes + 1));
  assert.ok(published.encryptedInput.length > maxInlineInputBytes);
  assert.equal(puts.length, 3, "program, input and envelope");
  const envelope = parseTaskEnvelope(puts[2]!);
  assert.ok("cid" in envelope.input && !("inline" in envelope.input));
  assert.deepEqual(puts[Number(envelope.input.cid.slice(4))], published.encryptedInput);
  assert.equal(published.spec.inputDigest, sha256(published.encryptedInput));
});

test("the encrypted input at exactly the limit is still inlined", async () => {
  // The input stream adds a fixed overhead for a one-chunk input: size the plaintext so the ciphertext is exactly the limit.
  const overhead = (await publish(new Uint8Array(100))).published.encryptedInput.length - 100;
  const { published, puts } = await publish(new Uint8Array(maxInlineInputBytes - overhead));
  assert.equal(published.encryptedInput.length, maxInlineInputBytes);
  assert.equal(puts.length, 2);
  assert.ok("inline" in published.envelope.input);
});
