/**
 * What a task's records say when the program attacks them (issue 10): a forged
 * output completes the task with an error record rather than crashing it; an
 * error record is bounded by the task's maxOutputBytes whatever the program
 * throws; and the public provenance statement and the host's view of the run
 * carry neither the outcome nor exact CPU or wall time, which only the
 * requester reads, from the encrypted result.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { MAX_PROGRAM_TEXT_CHARS } from "../../src/enclave/executors/program-text.ts";
import { taskPart, statementOfSignedEnvelope } from "../../src/protocol/provenance.ts";
import { decryptResult, type ResultRecord } from "../../src/protocol/result.ts";
import type { TaskLimits, TaskSpec } from "../../src/protocol/task.ts";
import { bindingFor, makeTask, runTask, tempDir } from "./task-fixture.ts";

let root: string;
let enclave: EnclaveClient;
let nextTask = 3000n;

before(async () => {
  root = await tempDir("task-records");
  enclave = await startEnclave({ dataDir: join(root, "data"), attestation: { provider: "sim", pkiDir: join(root, "platform") } });
});

after(async () => {
  await enclave?.close();
  await rm(root, { recursive: true, force: true });
});

async function run(program: string, input = new Uint8Array(0), limits?: Partial<TaskLimits>, spec?: Partial<TaskSpec>) {
  const binding = bindingFor(nextTask++);
  const { params, requester } = await makeTask(enclave.identity, { binding, program, input, limits, spec });
  const out = await runTask(enclave, params);
  const record = await decryptResult(requester.privateKey, binding, out.result);
  return { out, record };
}

function errorOf(record: ResultRecord): { code: string; message: string } {
  assert.equal(record.outcome, "error", "the program's failure is an error record");
  assert.ok(record.outcome === "error");
  return record.error;
}

describe("forged outputs", () => {
  test("a program that returns 42 after replacing the intrinsics the runner used completes with PROGRAM_BAD_OUTPUT, not INTERNAL", async () => {
    const program = `export default () => {
      ArrayBuffer.isView = () => true;
      Object.defineProperty(Number, Symbol.hasInstance, { value: () => true });
      Object.defineProperty(ArrayBuffer, Symbol.hasInstance, { value: () => true });
      Uint8Array.prototype.slice = Object.getPrototypeOf(Uint8Array.prototype).slice = () => 42;
      return 42;
    }`;
    const { record } = await run(program);
    assert.equal(errorOf(record).code, "PROGRAM_BAD_OUTPUT");
  });

  test("a string returned with a replaced TextEncoder is encoded as the string, not as what the program's encoder says", async () => {
    const { record } = await run(`export default () => { globalThis.TextEncoder = class { encode() { return new Uint8Array(8); } }; return "ok ✓"; }`);
    assert.ok(record.outcome === "ok");
    assert.deepEqual(record.output, new TextEncoder().encode("ok ✓"));
  });
});

describe("the memory a task may use", () => {
  test("a program is held to the spec's memoryMb, which the node's offer covers, not to a larger limit in the envelope", async () => {
    const { out, record } = await run("export default () => { const a = []; for (let i = 0; i < 16; i++) a.push(new Uint8Array(8 << 20)); return 'ok'; }", undefined, { memoryMb: 512 }, { memoryMb: 16 });
    const { code, message } = errorOf(record);
    assert.equal(code, "MEMORY_LIMIT_EXCEEDED");
    assert.match(message, /memory limit of 16 MB/);
    assert.equal(taskPart(statementOfSignedEnvelope(out.provenance))?.limits.memoryMb, 16, "the statement names the limit the program ran under");
  });
});

describe("error records are bounded", () => {
  const limits = { maxOutputBytes: 16, memoryMb: 128 };
  const twentyMiB = 20 * 2 ** 20;

  test("a 20 MiB message thrown with maxOutputBytes 16 is cut to 16 characters with a marker", async () => {
    const { out, record } = await run(`export default () => { throw new Error("0123456789abcdefXYZ".repeat(${twentyMiB / 16}).slice(0, ${twentyMiB})); }`, undefined, limits);
    const { code, message } = errorOf(record);
    assert.equal(code, "PROGRAM_THREW");
    assert.match(message, /^program threw Error: 0123456789abcdef… \[cut to 16 of 20971520 characters\]$/);
    assert.ok(out.result.length < 4096, `the result blob is ${out.result.length} bytes`);
  });

  test("a message thrown at module evaluation is bounded too", async () => {
    const { record } = await run(`throw new Error("m".repeat(${twentyMiB})); export default () => 1;`, undefined, limits);
    const { code, message } = errorOf(record);
    assert.equal(code, "PROGRAM_THREW");
    assert.ok(message.length < 200, message.slice(0, 300));
    assert.match(message, /cut to 16 of/);
  });

  test("a thrown object's message getter, toString or Proxy traps never run once the program has thrown", async () => {
    const loop = "for (;;) {}";
    for (const thrown of [
      `(() => { const e = new Error("short"); Object.defineProperty(e, "message", { get() { ${loop} } }); return e; })()`,
      `{ toString() { ${loop} }, get message() { ${loop} } }`,
      `new Proxy(new Error("p"), { get() { ${loop} }, getOwnPropertyDescriptor() { ${loop} }, getPrototypeOf() { ${loop} } })`,
      `Object.setPrototypeOf(new Error("proto"), new Proxy({}, { get() { ${loop} } }))`,
    ]) {
      const started = performance.now();
      const { record } = await run(`export default () => { throw ${thrown}; }`, undefined, { cpuTimeMs: 5_000, timeoutMs: 5_000 });
      assert.equal(errorOf(record).code, "PROGRAM_THREW", thrown);
      assert.ok(performance.now() - started < 2_500, `${thrown} ran the program's code after it threw`);
    }
  });

  test("the whole error message is at most the fixed cap of program text plus the runner's words, whatever maxOutputBytes allows", async () => {
    const { record } = await run(`export default () => { throw new RangeError("é".repeat(100000)); }`, undefined, { maxOutputBytes: 1 << 20 });
    const { message } = errorOf(record);
    assert.ok(message.length < MAX_PROGRAM_TEXT_CHARS + 100, `message is ${message.length} characters`);
    assert.match(message, /^program threw RangeError: é+… \[cut to 512 of 100000 characters\]$/);
  });
});

describe("what the public record reveals", () => {
  test("the provenance statement and the host's reply carry no outcome and no exact CPU or wall time; the requester reads them from the result", async () => {
    for (const [program, outcome] of [
      ["export default (input) => { let x = 0; for (let i = 0; i < 2e6; i++) x += i; return input; }", "ok"],
      ["export default () => { throw new Error('secret-dependent failure'); }", "error"],
    ] as const) {
      const { out, record } = await run(program, new TextEncoder().encode("some input"));
      assert.equal(record.outcome, outcome);
      assert.ok(record.usage.wallMs > 0 && (outcome === "error" || record.usage.cpuMs > 0), "the requester gets exact figures");
      assert.equal(out.job.error, null, "the enclave tells the host nothing of the outcome");
      assert.equal(out.job.resourceUse, null, "nor of the resources used");
      const statement = statementOfSignedEnvelope(out.provenance);
      const predicate = statement.predicate as Record<string, unknown>;
      assert.equal(predicate.outcome, undefined);
      assert.equal(predicate.resourceUse, null);
      const text = new TextDecoder().decode(out.provenance);
      const payload = Buffer.from(JSON.parse(text).payload, "base64").toString("utf8");
      assert.doesNotMatch(payload, /wallMs|cpuMs|outputBytes|"ok"|"error"/);
      for (const t of [statement.predicate.startedOn, statement.predicate.finishedOn]) assert.match(t, /T\d\d:\d\d:\d\d\.000Z$/, "times are whole seconds");
    }
  });

  test("the result blob's size is padded to a bucket: an error record and a small output are the same size", async () => {
    const ok = await run("export default () => new Uint8Array(20)");
    const err = await run("export default () => { throw new Error('x'); }");
    const tiny = await run("export default () => new Uint8Array(1)");
    assert.equal(ok.out.result.length, err.out.result.length);
    assert.equal(tiny.out.result.length, err.out.result.length);
    assert.ok(ok.record.outcome === "ok" && ok.record.output.length === 20, "padding is removed on decryption");
  });
});
