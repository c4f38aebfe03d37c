import { test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { signerKeys } from "../../src/crypto/secp256k1-signers.ts";
import { buildStatement, ProvenanceError, signEnvelope, verifyEnvelope, type DsseEnvelope } from "../../src/protocol/provenance.ts";

const N = secp256k1.Point.CURVE().n;

async function envelopeBy(account: PrivateKeyAccount, taskId = 9n): Promise<Uint8Array> {
  const statement = buildStatement({
    binding: { chainId: 31337n, market: "0x5FbDB2315678afecb367f032d93F642f64180aa3", taskId },
    outputDigest: sha256(new Uint8Array([1])),
    programDigest: sha256(new Uint8Array([2])),
    inputDigests: [{ name: "input", digest: sha256(new Uint8Array([3])) }],
    envelopeDigest: sha256(new Uint8Array([4])),
    enclave: { signer: account.address, hpkePublicKey: `0x${"cd".repeat(32)}`, measurement: "ab".repeat(32), teeType: "SGX", simulated: true, evidenceCid: "bafy-evidence" },
    limits: { memoryMb: 64, timeoutMs: 5000, maxOutputBytes: 1024 },
    startedOn: new Date("2025-01-01T00:00:00Z"),
    finishedOn: new Date("2025-01-01T00:00:01Z"),
  });
  return signEnvelope(statement, account);
}

function parse(envelope: Uint8Array): DsseEnvelope {
  return JSON.parse(new TextDecoder().decode(envelope)) as DsseEnvelope;
}

/** Re-encodes the envelope with its signature bytes changed by `edit`. */
function withSignature(envelope: Uint8Array, edit: (sig: Buffer) => Buffer): Uint8Array {
  const doc = parse(envelope);
  const sig = edit(Buffer.from(doc.signatures[0]!.sig, "base64"));
  return new TextEncoder().encode(JSON.stringify({ ...doc, signatures: [{ ...doc.signatures[0]!, sig: sig.toString("base64") }] }));
}

const flipV = (sig: Buffer) => Buffer.concat([sig.subarray(0, 64), Buffer.of(sig[64] === 27 ? 28 : 27)]);
const highS = (sig: Buffer) => {
  const s = BigInt(`0x${sig.subarray(32, 64).toString("hex")}`);
  return flipV(Buffer.concat([sig.subarray(0, 32), Buffer.from((N - s).toString(16).padStart(64, "0"), "hex"), sig.subarray(64)]));
};

const rejection = (code: string, message?: string) => (e: unknown) => e instanceof ProvenanceError && e.code === code && (message === undefined || e.message === message);

test("verifyEnvelope derives the enclave key's address once and matches later envelopes' keys against it", async () => {
  signerKeys.clear();
  const enclave = privateKeyToAccount(generatePrivateKey());
  await verifyEnvelope(await envelopeBy(enclave), enclave.address);
  assert.deepEqual(signerKeys.stats, { keys: 1, keyMatches: 0, addressDerivations: 1 });
  await verifyEnvelope(await envelopeBy(enclave, 10n), enclave.address);
  await verifyEnvelope(await envelopeBy(enclave), enclave.address);
  assert.deepEqual(signerKeys.stats, { keys: 1, keyMatches: 2, addressDerivations: 1 });
});

test("for a remembered enclave, another key, a tampered payload and the other v are refused as before", async () => {
  signerKeys.clear();
  const enclave = privateKeyToAccount(generatePrivateKey());
  const stranger = privateKeyToAccount(generatePrivateKey());
  const genuine = await envelopeBy(enclave);
  await verifyEnvelope(genuine, enclave.address);

  await assert.rejects(
    verifyEnvelope(await envelopeBy(stranger), enclave.address),
    rejection("SIGNER_MISMATCH", `provenance envelope is signed by ${stranger.address}, not by the expected enclave ${enclave.address}: it was altered or signed by another key`),
  );

  const doc = parse(genuine);
  const tampered = { ...doc, payload: Buffer.from(Buffer.from(doc.payload, "base64").toString().replace('"id":"9"', '"id":"8"')).toString("base64") };
  await assert.rejects(verifyEnvelope(new TextEncoder().encode(JSON.stringify(tampered)), enclave.address), rejection("SIGNER_MISMATCH"));

  await assert.rejects(verifyEnvelope(withSignature(genuine, flipV), enclave.address), rejection("SIGNER_MISMATCH"));
  await assert.rejects(verifyEnvelope(withSignature(genuine, (sig) => Buffer.concat([sig.subarray(0, 64), Buffer.of(2)])), enclave.address), rejection("BAD_SIGNATURE"));
  assert.equal(signerKeys.stats.keys, 1);
});

test("a high-s signature with its matching v is accepted, as recovery accepted it, and refused with the other v", async () => {
  signerKeys.clear();
  const enclave = privateKeyToAccount(generatePrivateKey());
  const genuine = await envelopeBy(enclave);
  await verifyEnvelope(withSignature(genuine, highS), enclave.address); // cold: address derived
  await verifyEnvelope(withSignature(genuine, highS), enclave.address); // warm: remembered key matched
  assert.deepEqual(signerKeys.stats, { keys: 1, keyMatches: 1, addressDerivations: 1 });
  await assert.rejects(verifyEnvelope(withSignature(genuine, (sig) => flipV(highS(sig))), enclave.address), rejection("SIGNER_MISMATCH"));
});
