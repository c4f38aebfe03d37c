/**
 * refuseTask: the enclave signs a Refusal only when the task's own inputs,
 * authenticated by the spec's digests or the requester's CIDs, make it
 * unrunnable; never for bytes the host could have swapped, nor for a task
 * that runs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { recoverAddress, sha256, type Hex } from "viem";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { refusalDigest, refusalReasons } from "../../src/protocol/refusal.ts";
import { taskSpecHash, type TaskEnvelope } from "../../src/protocol/task.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { bindingFor, makeTask, refuseTask, rejectsWith, runTask, tempDir, withDigests, type RunTaskParams } from "./task-fixture.ts";

const ECHO = "export default function (input) { return input; }";
let root: string;
let enclave: EnclaveClient;

before(async () => {
  root = await tempDir("refusal");
  enclave = await startEnclave({ dataDir: join(root, "data"), attestation: { provider: "sim", pkiDir: join(root, "platform") } });
});

after(async () => {
  await enclave?.close();
  await rm(root, { recursive: true, force: true });
});

/** The params with the envelope rewritten by `edit` and the spec's digests following it (the requester's doing). */
function withEnvelope(params: RunTaskParams, envelope: TaskEnvelope, edit: (e: TaskEnvelope) => TaskEnvelope): RunTaskParams {
  return withDigests(params, { envelope: new TextEncoder().encode(JSON.stringify(edit(envelope))) });
}

async function signedBy(params: RunTaskParams, attempt: number, out: { reason: number; signature: Hex }): Promise<string> {
  const hash = refusalDigest(params.binding.chainId, params.binding.market, { taskId: params.binding.taskId, specHash: taskSpecHash(params.spec), attempt, reason: out.reason });
  return recoverAddress({ hash, signature: out.signature });
}

describe("refuseTask in the enclave", () => {
  test("a garbage data key wrapped by the requester: a refusal signed by the enclave for this task and attempt", async () => {
    const { params, envelope } = await makeTask(enclave.identity, { binding: bindingFor(3001n), program: ECHO, input: new Uint8Array([1]) });
    const garbage = withEnvelope(params, envelope, (e) => ({ ...e, wrappedKeys: e.wrappedKeys.map((w) => ({ ...w, ciphertext: `0x${randomBytes(48).toString("hex")}` as Hex })) }));
    await rejectsWith(runTask(enclave, garbage), "KEY_UNWRAP_FAILED");
    const out = await refuseTask(enclave, { ...garbage, attempt: 2 });
    assert.equal(out.reason, refusalReasons.KEY_UNWRAP_FAILED);
    assert.equal(out.failure.code, "KEY_UNWRAP_FAILED");
    assert.equal(await signedBy(garbage, 2, out), enclave.identity.signer);
  });

  test("an input ciphertext the requester tampered with: INPUT_DECRYPTION_FAILED", async () => {
    const { params, envelope } = await makeTask(enclave.identity, { binding: bindingFor(3002n), program: ECHO, input: new Uint8Array(64) });
    const input = Uint8Array.from(params.input);
    input[input.length - 1]! ^= 1;
    const tampered = withEnvelope({ ...params, input }, envelope, (e) => ({ ...e, input: { cid: "bafy-input", digest: sha256(input) } }));
    await rejectsWith(runTask(enclave, tampered), "INPUT_DECRYPTION_FAILED");
    const out = await refuseTask(enclave, { ...tampered, attempt: 1 });
    assert.equal(out.reason, refusalReasons.INPUT_DECRYPTION_FAILED);
    // The spec's input digest with an envelope that names another: the requester's envelope is inconsistent.
    const inconsistent = await refuseTask(enclave, { ...withDigests(params, { input }), attempt: 1 });
    assert.equal(inconsistent.reason, refusalReasons.TASK_MISMATCH);
  });

  test("an envelope CID whose bytes do not match the spec's envelope digest: ENVELOPE_DIGEST_MISMATCH", async () => {
    const { params } = await makeTask(enclave.identity, { binding: bindingFor(3003n), program: ECHO, input: new Uint8Array([2]) });
    const spec = { ...params.spec, envelopeCid: String(await cidOfBytes(params.envelope)), envelopeDigest: sha256(new Uint8Array([9])) };
    const out = await refuseTask(enclave, { ...params, spec, attempt: 1 });
    assert.equal(out.reason, refusalReasons.ENVELOPE_DIGEST_MISMATCH);
  });

  test("a program CID in the envelope whose bytes are not the spec's program: PROGRAM_DIGEST_MISMATCH", async () => {
    const { params, envelope } = await makeTask(enclave.identity, { binding: bindingFor(3004n), program: ECHO, input: new Uint8Array([3]) });
    const other = new TextEncoder().encode("export default function () { return 'other'; }");
    const otherCid = String(await cidOfBytes(other));
    const named = withEnvelope(params, envelope, (e) => ({ ...e, program: { ...e.program, cid: otherCid } }));
    const out = await refuseTask(enclave, { ...named, program: other, attempt: 1 });
    assert.equal(out.reason, refusalReasons.PROGRAM_DIGEST_MISMATCH);
  });

  test("bytes the host swapped (program, envelope, input) and a task that runs get no refusal", async () => {
    const { params } = await makeTask(enclave.identity, { binding: bindingFor(3005n), program: ECHO, input: new Uint8Array([4]) });
    const swapped = new TextEncoder().encode("export default function () { return 'host'; }");
    await rejectsWith(refuseTask(enclave, { ...params, program: swapped, attempt: 1 }), "REFUSAL_UNFOUNDED", /may be the host's/);
    await rejectsWith(refuseTask(enclave, { ...params, envelope: new TextEncoder().encode("{}"), attempt: 1 }), "REFUSAL_UNFOUNDED", /may be the host's/);
    await rejectsWith(refuseTask(enclave, { ...params, input: new Uint8Array(40), attempt: 1 }), "REFUSAL_UNFOUNDED", /may be the host's/);
    await rejectsWith(refuseTask(enclave, { ...params, attempt: 1 }), "REFUSAL_UNFOUNDED", /can run/);
  });

  test("an open task with no key wrapped to this enclave is its node's mistake, not the requester's: no refusal", async () => {
    const { params, envelope } = await makeTask(enclave.identity, { binding: bindingFor(3006n), program: ECHO, input: new Uint8Array([5]) });
    const unwrapped = withEnvelope(params, envelope, (e) => ({ ...e, wrappedKeys: [{ ...e.wrappedKeys[0]!, enclave: "0x000000000000000000000000000000000000dEaD" }] }));
    await rejectsWith(refuseTask(enclave, { ...unwrapped, spec: { ...unwrapped.spec, candidates: [] }, attempt: 1 }), "REFUSAL_UNFOUNDED");
    // The same envelope for a task that names this enclave: the requester did not wrap its key.
    const out = await refuseTask(enclave, { ...unwrapped, attempt: 1 });
    assert.equal(out.reason, refusalReasons.KEY_UNWRAP_FAILED);
  });
});
