import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { recoverTypedDataAddress, sha256 } from "viem";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { completionDomain, completionTypes } from "../../src/protocol/completion.ts";
import { enclaveReportData } from "../../src/protocol/binding.ts";
import { fromHex, toHex } from "../../src/crypto/bytes.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { taskPart, verifyProvenance } from "../../src/protocol/provenance.ts";
import { decryptResult } from "../../src/protocol/result.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { bindingFor, makeTask, rejectsWith, runTask, tempDir, withDigests } from "./task-fixture.ts";

const ECHO = "export default function (input) { return input; }";
const frames: unknown[] = [];

const OPERATOR = `0x${"11".repeat(20)}` as const;
let root: string;
let dataDir: string;
let pkiDir: string;
let enclave: EnclaveClient;

before(async () => {
  root = await tempDir("enclave");
  dataDir = join(root, "data");
  pkiDir = join(root, "platform");
  enclave = await startEnclave({ dataDir, attestation: { provider: "sim", pkiDir }, onFrame: (_dir, frame) => frames.push(frame) });
});

after(async () => {
  await enclave?.close();
  await rm(root, { recursive: true, force: true });
});

test("init reports a simulated identity with a 32-byte HPKE key and a SHA-256 measurement", () => {
  assert.match(enclave.identity.signer, /^0x[0-9a-fA-F]{40}$/);
  assert.match(enclave.identity.hpkePublicKey, /^0x[0-9a-f]{64}$/);
  assert.match(enclave.identity.measurement, /^[0-9a-f]{64}$/);
  assert.equal(enclave.identity.simulated, true);
});

test("a task runs end to end: result decrypts, completion and provenance verify", async () => {
  const binding = bindingFor(1001n);
  const { params, requester } = await makeTask(enclave.identity, {
    binding,
    program: "export default async (input) => 'got ' + new TextDecoder().decode(input)",
    input: new TextEncoder().encode("hello enclave"),
  });
  const out = await runTask(enclave, params);
  assert.equal(out.outputDigest, sha256(out.result));
  assert.equal(out.provenanceDigest, sha256(out.provenance));

  const record = await decryptResult(requester.privateKey, binding, out.result);
  assert.equal(record.outcome, "ok");
  assert.equal(record.outcome === "ok" && new TextDecoder().decode(record.output), "got hello enclave");
  await assert.rejects(decryptResult(requester.privateKey, bindingFor(1002n), out.result));

  const signer = await recoverTypedDataAddress({
    domain: completionDomain(binding.chainId, binding.market),
    types: completionTypes,
    primaryType: "Completion",
    message: {
      taskId: binding.taskId,
      programDigest: params.spec.programDigest,
      inputDigest: params.spec.inputDigest,
      outputDigest: out.outputDigest,
      provenanceDigest: out.provenanceDigest,
      outputCid: out.outputCid,
      provenanceCid: out.provenanceCid,
    },
    signature: out.signature,
  });
  assert.equal(signer, enclave.identity.signer);
  // The signed CIDs are those of the bytes in the fixed profile: what the host's put returns.
  assert.equal(out.outputCid, String(await cidOfBytes(out.result)));
  assert.equal(out.provenanceCid, String(await cidOfBytes(out.provenance)));

  const statement = verifyProvenance(out.provenance, fromHex(enclave.identity.provenanceKey));
  assert.equal(statement.subject[0]?.digest.sha256, out.outputDigest.slice(2));
  assert.deepEqual(statement.predicate.job, { kind: "task", id: "1001" });
  assert.equal(taskPart(statement)?.program.digest, params.spec.programDigest);
  assert.equal(statement.predicate.enclave.provenanceKey, enclave.identity.provenanceKey);
  assert.equal(statement.predicate.enclave.tlsKey, enclave.identity.tlsKey);
  assert.equal(statement.predicate.resourceUse, null, "the public statement does not say what the run used");
  assert.equal(out.job.resourceUse, null, "nor does the outcome the host sees");
  assert.equal(out.job.error, null);
  assert.equal(statement.predicate.enclave.measurement, enclave.identity.measurement);
  assert.equal(statement.predicate.enclave.simulated, true);
  assert.equal("outcome" in statement.predicate, false, "the public statement does not say how the run ended");
});

test("a failing program yields an encrypted error record and a normal completion", async () => {
  const binding = bindingFor(1003n);
  const { params, requester } = await makeTask(enclave.identity, {
    binding,
    program: "export default () => { for (;;) {} }",
    input: new Uint8Array([1]),
    limits: { timeoutMs: 200 },
  });
  const out = await runTask(enclave, params);
  const record = await decryptResult(requester.privateKey, binding, out.result);
  assert.equal(record.outcome, "error");
  assert.equal(record.outcome === "error" && record.error.code, "TIME_LIMIT_EXCEEDED");
  assert.equal("outcome" in verifyProvenance(out.provenance, fromHex(enclave.identity.provenanceKey)).predicate, false);
  assert.equal(out.job.error, null, "the host does not learn that the program failed");
});

test("a tampered input ciphertext is refused with INPUT_DECRYPTION_FAILED", async () => {
  const { params } = await makeTask(enclave.identity, { binding: bindingFor(1004n), program: ECHO, input: new Uint8Array(3000) });
  const input = params.input.slice();
  input[17 + 1040 + 5]! ^= 1; // inside chunk 1
  const spec = { ...params.spec, inputDigest: sha256(input) };
  const envelope = new TextEncoder().encode(
    JSON.stringify({ ...JSON.parse(new TextDecoder().decode(params.envelope)), input: { cid: "bafy-input", digest: sha256(input) } }),
  );
  await rejectsWith(
    runTask(enclave, { ...params, input, envelope, spec: { ...spec, envelopeDigest: sha256(envelope) } }),
    "INPUT_DECRYPTION_FAILED",
    /input ciphertext failed authentication at chunk 1/,
  );
});

test("an input encrypted for another task is refused", async () => {
  const { params } = await makeTask(enclave.identity, { binding: bindingFor(1005n), inputBinding: bindingFor(9n), program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, params), "INPUT_DECRYPTION_FAILED");
});

test("digest mismatches are refused: program, input, envelope", async () => {
  const { params } = await makeTask(enclave.identity, { binding: bindingFor(1006n), program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, { ...params, program: new TextEncoder().encode("export default () => 'evil'") }), "PROGRAM_DIGEST_MISMATCH");
  await rejectsWith(runTask(enclave, { ...params, input: params.input.subarray(1) }), "INPUT_DIGEST_MISMATCH");
  await rejectsWith(runTask(enclave, { ...params, envelope: new TextEncoder().encode("{}") }), "ENVELOPE_DIGEST_MISMATCH");
  // A spec that names the evil program's digest still disagrees with the envelope the requester signed off.
  const evil = withDigests(params, { program: new TextEncoder().encode("export default () => 'evil'") });
  await rejectsWith(runTask(enclave, { ...evil, spec: { ...evil.spec, envelopeDigest: params.spec.envelopeDigest } }), "TASK_MISMATCH");
});

test("a data key wrapped for another task id is refused with KEY_UNWRAP_FAILED", async () => {
  const { params } = await makeTask(enclave.identity, { binding: bindingFor(1007n), wrapBinding: bindingFor(1008n), program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, params), "KEY_UNWRAP_FAILED", /task 1007/);
});

test("a host that re-uses the requester's wrapped key beside its own result key or program gets KEY_UNWRAP_FAILED", async () => {
  // The host builds its own envelope and spec (the enclave cannot read the chain) around the requester's
  // wrapped key: its own result key, to read the output, or its own program, to run on the input.
  const host = await generateHpkeKeyPair();
  const stolenOutput = await makeTask(enclave.identity, { binding: bindingFor(1010n), wrapResultKey: host, program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, stolenOutput.params), "KEY_UNWRAP_FAILED", /another result key/);
  const otherProgram = await makeTask(enclave.identity, { binding: bindingFor(1011n), wrapProgram: new TextEncoder().encode("export default (i) => i"), program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, otherProgram.params), "KEY_UNWRAP_FAILED", /another program/);
  // Wrapped for the envelope's own program and result key, the same task runs.
  const honest = await makeTask(enclave.identity, { binding: bindingFor(1012n), program: ECHO, input: new Uint8Array(10) });
  assert.equal((await decryptResult(honest.requester.privateKey, honest.params.binding, (await runTask(enclave, honest.params)).result)).outcome, "ok");
});

test("an envelope for another task id is refused with TASK_MISMATCH", async () => {
  const { params } = await makeTask(enclave.identity, { binding: bindingFor(1009n), program: ECHO, input: new Uint8Array(10) });
  await rejectsWith(runTask(enclave, { ...params, binding: bindingFor(1010n) }), "TASK_MISMATCH");
});

test("malformed requests are refused by the gate", async () => {
  await rejectsWith(enclave.attest({ freshness: "0x1234" as `0x${string}`, operator: OPERATOR }), "BAD_REQUEST", /the enclave refused a malformed request: attest params: freshness/);
  await rejectsWith(enclave.attest({ operator: "0x1234" as `0x${string}` }), "BAD_REQUEST", /attest params: operator/);
  const { params, requester } = await makeTask(enclave.identity, { binding: bindingFor(1003n), program: ECHO, input: new Uint8Array([1]) });
  await rejectsWith(runTask(enclave, { ...params, binding: { ...params.binding, taskId: -1n } }), "BAD_REQUEST", /refusing to send a malformed request: runJob params: params\.binding\.taskId/);
  await rejectsWith(runTask(enclave, { ...params, extra: 1 } as typeof params), "BAD_REQUEST", /refusing to send a malformed request: runJob params: params/);
  // What cannot cross the IPC channel at all is refused before it is sent.
  await rejectsWith(runTask(enclave, { ...params, evidenceCid: (() => "cid") as unknown as string }), "BAD_REQUEST", /refusing to send a malformed request: runJob params: evidenceCid/);
  const served = await runTask(enclave, params);
  assert.equal((await decryptResult(requester.privateKey, params.binding, served.result)).outcome, "ok", "the enclave still serves well-formed requests");
});

test("attest returns simulated SGX evidence whose report_data binds the enclave's keys, the operator and the freshness", async () => {
  const freshness = `0x${"ab".repeat(32)}` as const;
  const { reportData, evidence } = await enclave.attest({ freshness, operator: OPERATOR });
  const id = enclave.identity;
  const keys = { signer: id.signer, hpkePublicKey: fromHex(id.hpkePublicKey), provenanceKey: fromHex(id.provenanceKey), tlsKey: fromHex(id.tlsKey) };
  const expected = enclaveReportData({ ...keys, operator: OPERATOR }, fromHex(freshness));
  assert.equal(reportData, toHex(expected));
  const other = await enclave.attest({ freshness, operator: `0x${"22".repeat(20)}` });
  assert.notEqual(other.reportData.slice(0, 66), reportData.slice(0, 66), "another operator gets another key commitment");
  assert.equal(evidence.teeType, "SGX");
  assert.ok("quote" in evidence && Buffer.from(evidence.quote).includes(Buffer.from(expected)), "report_data must be inside the quote");
  assert.ok("quote" in evidence && Buffer.from(evidence.quote).includes(Buffer.from(enclave.identity.measurement, "hex")), "MRENCLAVE must be the measurement");
});

test("canary: no frame the host saw and no file under the data dir holds the plaintext input or output", async () => {
  const canary = `canary-${randomBytes(16).toString("hex")}`;
  const binding = bindingFor(1011n);
  const { params, requester } = await makeTask(enclave.identity, { binding, program: ECHO, input: new TextEncoder().encode(`secret ${canary} row`) });
  const out = await runTask(enclave, params);
  const record = await decryptResult(requester.privateKey, binding, out.result);
  assert.ok(record.outcome === "ok" && new TextDecoder().decode(record.output).includes(canary), "the canary must reach the output");

  const needles = [Buffer.from(canary), Buffer.from(Buffer.from(canary).toString("hex")), Buffer.from(Buffer.from(canary).toString("base64").slice(0, 20))];
  const haystacks: Buffer[] = frames.map((f) => Buffer.from(serialize(f)));
  for (const dir of [dataDir]) {
    for (const name of await readdir(dir, { recursive: true })) {
      try {
        haystacks.push(await readFile(join(dir, name)));
      } catch {
        // a directory
      }
    }
  }
  assert.ok(haystacks.length > 3);
  for (const h of haystacks) for (const n of needles) assert.equal(h.includes(n), false, "the canary leaked to the host");
});

test("a restarted enclave keeps its identity; another platform cannot unseal", async () => {
  const again = await startEnclave({ dataDir, attestation: { provider: "sim", pkiDir } });
  try {
    assert.equal(again.identity.signer, enclave.identity.signer);
    assert.equal(again.identity.hpkePublicKey, enclave.identity.hpkePublicKey);
  } finally {
    await again.close();
  }
  const otherPlatform = startEnclave({ dataDir, attestation: { provider: "sim", pkiDir: join(root, "other-platform") } });
  await rejectsWith(otherPlatform, "UNSEAL_FAILED", /different measurement or on another platform/);
});

test("calls after the process died fail with ENCLAVE_EXITED", async () => {
  const dir = join(root, "short-lived");
  const short = await startEnclave({ dataDir: dir, attestation: { provider: "sim", pkiDir } });
  assert.notEqual(short.identity.signer, enclave.identity.signer);
  process.kill(short.pid, "SIGKILL");
  await short.exited;
  await rejectsWith(short.attest({ operator: OPERATOR }), "ENCLAVE_EXITED");
});

function serialize(frame: unknown): string {
  return JSON.stringify(frame, (_k, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString("hex") + " " + Buffer.from(v).toString("latin1");
    return v;
  });
}
