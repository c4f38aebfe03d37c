/**
 * Provenance records: in-toto Statement v1 in DSSE, signed with ECDSA P-256.
 * Standard verifiability is shown with implementations that share no code
 * with src/: node:crypto over a PAE written here, sigstore-js's own DSSE
 * primitives (@sigstore/core), and Python's `cryptography` (skipped, with a
 * note, where python3 has no `cryptography`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createPublicKey, verify } from "node:crypto";
import { crypto as sigstoreCrypto, dsse as sigstoreDsse } from "@sigstore/core";
import { sha256 } from "viem";
import { generateP256 } from "../../src/crypto/p256.ts";
import { toHex } from "../../src/crypto/bytes.ts";
import {
  buildStatement,
  pae,
  parseStatement,
  PAYLOAD_TYPE,
  PREDICATE_TYPE,
  ProvenanceError,
  signEnvelope,
  taskPart,
  verifyEnvelope,
  verifyProvenance,
  type StatementInput,
} from "../../src/protocol/provenance.ts";

function statementInput(signer: `0x${string}`, provenanceSpki: Uint8Array): StatementInput<"task"> {
  return {
    kind: "task",
    jobId: 77n,
    outputs: [{ name: "result", digest: sha256(new Uint8Array([1])) }],
    inputs: [{ name: "input", digest: sha256(new Uint8Array([3])) }],
    enclave: {
      signer,
      hpkePublicKey: `0x${"cd".repeat(32)}`,
      provenanceKey: toHex(provenanceSpki),
      tlsKey: toHex(generateP256().spki),
      measurement: "ab".repeat(32),
      teeType: "SGX",
      simulated: true,
      evidenceCid: "bafy-evidence",
    },
    policyDigest: null,
    resourceUse: null,
    startedOn: new Date("2025-01-01T00:00:00.750Z"),
    finishedOn: new Date("2025-01-01T00:00:01.020Z"),
    kindPredicate: {
      chainId: "31337",
      market: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      program: { digest: sha256(new Uint8Array([2])) },
      envelope: { digest: sha256(new Uint8Array([4])) },
      limits: { memoryMb: 64, cpuTimeMs: 1000, timeoutMs: 5000, maxOutputBytes: 1024 },
    },
  };
}

const signer = "0x00000000000000000000000000000000000000e1" as const;

function signed() {
  const key = generateP256();
  const statement = buildStatement(statementInput(signer, key.spki));
  return { key, statement, envelope: signEnvelope(statement, key) };
}

/** PAE exactly as the DSSE spec words it, written here without src/'s. */
function independentPae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

test("PAE matches the DSSE spec's example encoding", () => {
  assert.equal(new TextDecoder().decode(pae("http://example.com/HelloWorld", new TextEncoder().encode("hello world"))), "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
});

test("a statement is in-toto v1 with a common predicate part and the kind's own part", () => {
  const { statement } = signed();
  assert.equal(statement._type, "https://in-toto.io/Statement/v1");
  assert.equal(statement.predicateType, PREDICATE_TYPE);
  assert.deepEqual(statement.subject, [{ name: "result", digest: { sha256: sha256(new Uint8Array([1])).slice(2) } }]);
  assert.deepEqual(Object.keys(statement.predicate).sort(), ["enclave", "finishedOn", "inputs", "job", "policy", "resourceUse", "startedOn", "task"]);
  assert.deepEqual(statement.predicate.job, { kind: "task", id: "77" });
  assert.deepEqual(statement.predicate.policy, { digest: null });
  assert.equal(statement.predicate.startedOn, "2025-01-01T00:00:00.000Z", "rounded down to the second");
  assert.equal(statement.predicate.finishedOn, "2025-01-01T00:00:02.000Z", "rounded up to the second");
  assert.equal(taskPart(statement)?.limits.memoryMb, 64);
  assert.throws(() => buildStatement({ ...statementInput(signer, generateP256().spki), kindPredicate: { chainId: "x" } as never }), (e: unknown) => e instanceof ProvenanceError && e.code === "MALFORMED_STATEMENT");
});

test("the envelope verifies for its key, and its keyid is the SHA-256 of the key's SPKI DER", () => {
  const { key, statement, envelope } = signed();
  const doc = JSON.parse(new TextDecoder().decode(envelope)) as { payloadType: string; signatures: { keyid: string; sig: string }[] };
  assert.equal(doc.payloadType, PAYLOAD_TYPE);
  assert.equal(doc.signatures[0]?.keyid, createHash("sha256").update(key.spki).digest("hex"));
  assert.deepEqual(verifyProvenance(envelope, key.spki), statement);
  assert.deepEqual(parseStatement(verifyEnvelope(envelope, key.spki).payload), statement);
});

test("another key, an altered payload, a wrong payload type and garbage are refused", () => {
  const { key, envelope } = signed();
  const code = (c: string) => (e: unknown) => e instanceof ProvenanceError && e.code === c;
  assert.throws(() => verifyProvenance(envelope, generateP256().spki), code("BAD_SIGNATURE"));
  const doc = JSON.parse(new TextDecoder().decode(envelope)) as { payload: string; payloadType: string };
  const stmt = JSON.parse(Buffer.from(doc.payload, "base64").toString()) as { predicate: { job: { id: string } } };
  stmt.predicate.job.id = "78";
  const forged = { ...doc, payload: Buffer.from(JSON.stringify(stmt)).toString("base64") };
  assert.throws(() => verifyProvenance(new TextEncoder().encode(JSON.stringify(forged)), key.spki), code("BAD_SIGNATURE"));
  assert.throws(() => verifyProvenance(new TextEncoder().encode(JSON.stringify({ ...doc, payloadType: "text/plain" })), key.spki), code("WRONG_PAYLOAD_TYPE"));
  assert.throws(() => verifyProvenance(new TextEncoder().encode("{"), key.spki), code("MALFORMED_ENVELOPE"));
  assert.throws(() => parseStatement(new TextEncoder().encode('{"_type":"x"}')), code("MALFORMED_STATEMENT"));
});

test("standard DSSE verification with node:crypto alone: SPKI public key, PAE written independently, DER ECDSA P-256/SHA-256", () => {
  const { key, envelope } = signed();
  const doc = JSON.parse(Buffer.from(envelope).toString("utf8")) as { payload: string; payloadType: string; signatures: { sig: string }[] };
  const publicKey = createPublicKey({ key: Buffer.from(key.spki), format: "der", type: "spki" });
  assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const message = independentPae(doc.payloadType, Buffer.from(doc.payload, "base64"));
  assert.ok(verify("sha256", message, publicKey, Buffer.from(doc.signatures[0]!.sig, "base64")), "the signature verifies as standard DER ECDSA");
  const tampered = Buffer.from(message);
  tampered[tampered.length - 2]! ^= 1;
  assert.equal(verify("sha256", tampered, publicKey, Buffer.from(doc.signatures[0]!.sig, "base64")), false);
});

test("sigstore-js's DSSE primitives (@sigstore/core: its PAE, its verify) accept the envelope with the SPKI key", () => {
  const { key, envelope } = signed();
  const doc = JSON.parse(Buffer.from(envelope).toString("utf8")) as { payload: string; payloadType: string; signatures: { sig: string }[] };
  const message = sigstoreDsse.preAuthEncoding(doc.payloadType, Buffer.from(doc.payload, "base64"));
  const publicKey = sigstoreCrypto.createPublicKey(Buffer.from(key.spki), "spki");
  assert.ok(sigstoreCrypto.verify(message, publicKey, Buffer.from(doc.signatures[0]!.sig, "base64")));
  assert.equal(sigstoreCrypto.verify(message, sigstoreCrypto.createPublicKey(Buffer.from(generateP256().spki), "spki"), Buffer.from(doc.signatures[0]!.sig, "base64")), false);
});

const PYTHON_DSSE_VERIFY = `
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
env = json.loads(sys.stdin.read())
key = serialization.load_der_public_key(bytes.fromhex(sys.argv[1]))
body = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)
ok = 0
for s in env["signatures"]:
    try:
        key.verify(base64.b64decode(s["sig"]), pae, ec.ECDSA(hashes.SHA256()))
        ok += 1
    except Exception:
        pass
stmt = json.loads(body)
print(json.dumps({"valid": ok, "type": stmt["_type"], "kind": stmt["predicate"]["job"]["kind"]}))
`;

function pythonHasCryptography(): boolean {
  const probe = spawnSync("python3", ["-c", "import cryptography"], { encoding: "utf8" });
  return probe.status === 0;
}

test("standard DSSE verification in Python's cryptography (PAE + ECDSA P-256)", { skip: pythonHasCryptography() ? false : "python3 has no `cryptography` module here" }, () => {
  const { key, envelope } = signed();
  const run = (input: Uint8Array, spki: Uint8Array) => {
    const r = spawnSync("python3", ["-c", PYTHON_DSSE_VERIFY, Buffer.from(spki).toString("hex")], { input, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { valid: number; type: string; kind: string };
  };
  assert.deepEqual(run(envelope, key.spki), { valid: 1, type: "https://in-toto.io/Statement/v1", kind: "task" });
  assert.equal(run(envelope, generateP256().spki).valid, 0, "another key does not verify it");
});
