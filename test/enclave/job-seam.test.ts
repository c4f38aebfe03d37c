/**
 * The job seam: one gate method for every kind of work, its params validated
 * on both sides of the gate, the kind's authorization before its data is
 * touched, and one outcome shape whose provenance subject is its outputs.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256 } from "viem";
import { fromHex, toHex } from "../../src/crypto/bytes.ts";
import { checkPayload, type RunJobParams } from "../../src/enclave/call-gate.ts";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { runJob } from "../../src/enclave/job-runner.ts";
import { jobModules } from "../../src/enclave/jobs/registry.ts";
import type { EnclaveContext } from "../../src/enclave/jobs/job-module.ts";
import { loadOrCreateKeys } from "../../src/enclave/keys.ts";
import { JOB_KINDS } from "../../src/protocol/job-kinds.ts";
import { verifyProvenance } from "../../src/protocol/provenance.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { bindingFor, makeTask, rejectsWith, tempDir } from "./task-fixture.ts";

const ECHO = "export default function (input) { return input; }";
let root: string;
let ctx: EnclaveContext;
let identity: Parameters<typeof makeTask>[0];

before(async () => {
  root = await tempDir("job-seam");
  const { keys } = await loadOrCreateKeys(join(root, "keys"), new Uint8Array(32).fill(3));
  ctx = { keys, measurement: "ab".repeat(32), teeType: "SGX", simulated: true };
  identity = {
    signer: keys.account.address,
    hpkePublicKey: toHex(keys.hpke.publicKey),
    provenanceKey: toHex(keys.provenance.spki),
    tlsKey: toHex(keys.tls.spki),
    measurement: ctx.measurement,
    teeType: "SGX",
    simulated: true,
  };
});
after(() => rm(root, { recursive: true, force: true }));

async function taskRequest(taskId: bigint, opts: Partial<Parameters<typeof makeTask>[1]> = {}): Promise<Extract<RunJobParams, { kind: "task" }>> {
  const { params } = await makeTask(identity, { binding: bindingFor(taskId), program: ECHO, input: new TextEncoder().encode("seam"), ...opts });
  const { evidenceCid, ...task } = params;
  return { kind: "task", params: task, evidenceCid };
}

test("every job kind the protocol names has its module in the enclave's registry", () => {
  assert.deepEqual(Object.keys(jobModules).sort(), [...JOB_KINDS].sort());
  for (const kind of JOB_KINDS) assert.equal(jobModules[kind].kind, kind);
});

test("the outcome names each output by its digest and CID, and the provenance subject is those digests", async () => {
  const outcome = await runJob(ctx, await taskRequest(3001n));
  assert.equal(outcome.kind, "task");
  assert.equal(outcome.jobId, 3001n);
  assert.equal(outcome.outputs.length, 1);
  const [output] = outcome.outputs;
  assert.equal(output!.digest, sha256(output!.bytes));
  assert.equal(output!.cid, String(await cidOfBytes(output!.bytes)));
  assert.equal(outcome.provenance.digest, sha256(outcome.provenance.bytes));
  assert.equal(outcome.provenance.cid, String(await cidOfBytes(outcome.provenance.bytes)));
  assert.deepEqual([outcome.resourceUse, outcome.error], [null, null], "a task discloses neither to the host");
  assert.equal(outcome.anchor.type, "TaskMarket.Completion");
  const statement = verifyProvenance(outcome.provenance.bytes, fromHex(identity.provenanceKey));
  assert.deepEqual(statement.subject, [{ name: "result", digest: { sha256: output!.digest.slice(2) } }]);
  assert.deepEqual(statement.predicate.job, { kind: "task", id: "3001" });
  assert.equal(statement.predicate.enclave.evidenceCid, "bafy-evidence");
});

test("authorization runs before data is touched: a task not for this enclave is refused as such, not for its undecryptable input", async () => {
  // The input is encrypted for another task: it would fail to decrypt, were it ever decrypted.
  const undecryptable = await taskRequest(3002n, { inputBinding: bindingFor(9999n) });
  await rejectsWith(runJob(ctx, undecryptable), "INPUT_DECRYPTION_FAILED");
  const request = await taskRequest(3002n, { inputBinding: bindingFor(9999n), spec: { candidates: ["0x00000000000000000000000000000000000000aa"] } });
  await rejectsWith(runJob(ctx, request), "NOT_A_CANDIDATE");
});

test("gate schemas: an unknown kind or a kind's malformed params fail validation", async () => {
  const request = await taskRequest(3003n);
  assert.equal(checkPayload("runJob", "params", request).ok, true);
  const unknownKind = checkPayload("runJob", "params", { ...request, kind: "vault" });
  assert.ok(!unknownKind.ok && /runJob params: kind/.test(unknownKind.problem));
  const badParams = checkPayload("runJob", "params", { ...request, params: { ...request.params, spec: { ...request.params.spec, cpuMillis: -1 } } });
  assert.ok(!badParams.ok && /params\.spec\.cpuMillis/.test(badParams.problem));
  const refusal = checkPayload("refuseJob", "params", { kind: "task", params: request.params, attempt: 256 });
  assert.ok(!refusal.ok && /attempt/.test(refusal.problem));
});

test("both sides validate: the client refuses to send a malformed job; the enclave refuses one sent past the client", async () => {
  const frames: unknown[] = [];
  let enclave: EnclaveClient | undefined;
  const dataDir = join(root, "client");
  const attestation = { provider: "sim", pkiDir: join(root, "platform") };
  try {
    enclave = await startEnclave({ dataDir, attestation, onFrame: (direction, frame) => direction === "to-enclave" && frames.push(frame) });
    const sent = frames.length;
    const request = await taskRequest(3004n);
    await rejectsWith(enclave.runJob({ ...request, kind: "vault" } as unknown as RunJobParams), "BAD_REQUEST", /refusing to send a malformed request: runJob params: kind/);
    assert.equal(frames.length, sent, "nothing was sent");
  } finally {
    await enclave?.close();
  }

  // A host that skips the client: the enclave process itself refuses the frame.
  const child = fork(fileURLToPath(new URL("../../src/enclave/main.ts", import.meta.url)), [], {
    serialization: "advanced",
    execArgv: ["--no-node-snapshot", "--disable-warning=ExperimentalWarning"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const reply = async (frame: unknown) => {
      const answer = once(child, "message");
      child.send(frame as object);
      return (await answer)[0] as { id: number; result?: unknown; error?: { code: string; message: string } };
    };
    const init = await reply({ id: 1, method: "init", params: { dataDir, attestation } });
    assert.ok(init.result, JSON.stringify(init.error));
    const request = await taskRequest(3005n);
    const bad = await reply({ id: 2, method: "runJob", params: { ...request, params: { ...request.params, extra: 1 } } });
    assert.equal(bad.error?.code, "BAD_REQUEST");
    assert.match(bad.error?.message ?? "", /the enclave refused a malformed request: runJob params: params/);
  } finally {
    child.disconnect();
    await once(child, "exit");
  }
});
