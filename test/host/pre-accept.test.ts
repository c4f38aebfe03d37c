import assert from "node:assert/strict";
import { test } from "node:test";
import { sha256, type Address } from "viem";
import { checkBeforeAccept } from "../../src/host/pre-accept.ts";
import type { TaskEnvelope, TaskSpec } from "../../src/protocol/task.ts";
import { StorageError } from "../../src/storage/blob-store.ts";

const enclave: Address = "0x00000000000000000000000000000000000e0c1a";
const taskId = 77n;
const programDigest = sha256(new Uint8Array([1]));
const inputDigest = sha256(new Uint8Array([2]));

const envelope: TaskEnvelope = {
  version: 1,
  taskId: taskId.toString(),
  program: { cid: "bafkreiprogram", digest: programDigest },
  input: { cid: "bafkreiinput", digest: inputDigest },
  resultKey: `0x${"11".repeat(32)}`,
  wrappedKeys: [{ enclave, enc: `0x${"22".repeat(32)}`, ciphertext: `0x${"33".repeat(48)}` }],
  limits: { memoryMb: 64, cpuTimeMs: 1_000, timeoutMs: 4_000, maxOutputBytes: 1024 },
};

function taskWith(edit: (e: TaskEnvelope) => unknown = (e) => e, spec: Partial<TaskSpec> = {}) {
  const bytes = new TextEncoder().encode(JSON.stringify(edit(envelope)));
  const full: TaskSpec = {
    requester: "0x000000000000000000000000000000000000beef",
    token: "0x0000000000000000000000000000000000000000",
    maxPrice: 1n,
    programDigest,
    inputDigest,
    envelopeDigest: sha256(bytes),
    envelopeCid: "bafkreienvelope",
    candidates: [],
    cpuMillis: 1000,
    memoryMb: 64,
    duration: 4,
    teeTypes: 7,
    category: 0,
    deadlineMultiple: 1,
    maxAttempts: 1,
    ...spec,
  };
  return { spec: full, fetch: async (cid: string) => (cid === "bafkreienvelope" ? bytes : Promise.reject(new StorageError("BLOB_NOT_FOUND", `${cid} not found`))) };
}

async function reasonFor(edit?: (e: TaskEnvelope) => unknown, spec?: Partial<TaskSpec>): Promise<string> {
  const t = taskWith(edit, spec);
  const out = await checkBeforeAccept({ fetch: t.fetch, enclave }, taskId, t.spec);
  assert.equal(out.ok, false);
  return out.ok ? "" : out.reason;
}

test("a task whose envelope checks out is accepted, with the envelope kept for the run", async () => {
  const t = taskWith();
  const out = await checkBeforeAccept({ fetch: t.fetch, enclave }, taskId, t.spec);
  assert.ok(out.ok);
  assert.deepEqual(out.checked.envelope.wrappedKeys[0]?.enclave, enclave);
});

test("an unreachable store is the node's trouble, not the task's: it is thrown, not skipped", async () => {
  const t = taskWith();
  const unreachable = async () => Promise.reject(new StorageError("STORAGE_UNREACHABLE", "connection refused"));
  await assert.rejects(checkBeforeAccept({ fetch: unreachable, enclave }, taskId, t.spec), (e) => e instanceof StorageError && e.code === "STORAGE_UNREACHABLE");
});

test("a task the node can tell is unrunnable is skipped, with the reason", async () => {
  assert.match(await reasonFor(undefined, { envelopeCid: "bafkreimissing" }), /could not be fetched \(BLOB_NOT_FOUND/);
  assert.match(await reasonFor(undefined, { envelopeDigest: sha256(new Uint8Array([9])) }), /SHA-256 is 0x.*but the spec says/);
  assert.match(await reasonFor((e) => ({ ...e, version: 2 })), /malformed/);
  assert.match(await reasonFor((e) => ({ ...e, taskId: "78" })), /for task 78/);
  assert.match(await reasonFor((e) => ({ ...e, program: { ...e.program, digest: inputDigest } })), /another program digest/);
  assert.match(await reasonFor((e) => ({ ...e, input: { ...e.input, digest: programDigest } })), /another input digest/);
  assert.match(await reasonFor((e) => ({ ...e, wrappedKeys: [{ ...e.wrappedKeys[0]!, enclave: "0x000000000000000000000000000000000000dEaD" }] })), /no data key to this node's enclave/);
  assert.match(await reasonFor((e) => ({ ...e, limits: { ...e.limits, memoryMb: 65 } })), /65 MiB, more than the 64 MiB/);
  assert.match(await reasonFor((e) => ({ ...e, limits: { ...e.limits, timeoutMs: 4_001 } })), /4001 ms of wall time, more than the spec's 4 s/);
});
