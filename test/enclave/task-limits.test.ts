import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultTaskLimits, parseTaskEnvelope, resolveTaskLimits, TaskEnvelopeError, wallTimePerCpuTime } from "../../src/protocol/task.ts";

const zero32 = `0x${"00".repeat(32)}`;

function envelopeWith(limits: Record<string, unknown>): Uint8Array {
  const envelope = {
    version: 1,
    taskId: "1",
    program: { cid: "bafy-program", digest: zero32 },
    input: { cid: "bafy-input", digest: zero32 },
    resultKey: zero32,
    wrappedKeys: [],
    limits,
  };
  return new TextEncoder().encode(JSON.stringify(envelope));
}

test("the default CPU-time limit is the old 5 s time limit, with four times as much wall time", () => {
  assert.equal(defaultTaskLimits.cpuTimeMs, 5_000);
  assert.equal(defaultTaskLimits.timeoutMs, wallTimePerCpuTime * 5_000);
});

test("an envelope written before cpuTimeMs existed parses with its wall-time limit as the CPU-time limit", () => {
  const parsed = parseTaskEnvelope(envelopeWith({ memoryMb: 64, timeoutMs: 7_000, maxOutputBytes: 1024 }));
  assert.deepEqual(parsed.limits, { memoryMb: 64, cpuTimeMs: 7_000, timeoutMs: 7_000, maxOutputBytes: 1024 });
});

test("an envelope's cpuTimeMs is kept, and must be a positive integer of at most an hour", () => {
  const parsed = parseTaskEnvelope(envelopeWith({ memoryMb: 64, cpuTimeMs: 250, timeoutMs: 7_000, maxOutputBytes: 1024 }));
  assert.equal(parsed.limits.cpuTimeMs, 250);
  for (const cpuTimeMs of [0, -1, 1.5, 3_600_001, "100"]) {
    assert.throws(() => parseTaskEnvelope(envelopeWith({ memoryMb: 64, cpuTimeMs, timeoutMs: 7_000, maxOutputBytes: 1024 })), (e: unknown) => {
      assert.ok(e instanceof TaskEnvelopeError);
      assert.match(e.message, /limits\.cpuTimeMs/);
      return true;
    });
  }
});

test("resolveTaskLimits fills in what the requester left out", () => {
  assert.deepEqual(resolveTaskLimits(), defaultTaskLimits);
  // timeoutMs alone keeps its old meaning: the program may run that long.
  assert.deepEqual(resolveTaskLimits({ timeoutMs: 20_000 }), { ...defaultTaskLimits, cpuTimeMs: 20_000, timeoutMs: 20_000 });
  assert.deepEqual(resolveTaskLimits({ cpuTimeMs: 1_000 }), { ...defaultTaskLimits, cpuTimeMs: 1_000, timeoutMs: 4_000 });
  assert.equal(resolveTaskLimits({ cpuTimeMs: 3_000_000 }).timeoutMs, 3_600_000);
  assert.deepEqual(resolveTaskLimits({ cpuTimeMs: 10_000, timeoutMs: 300, memoryMb: 16 }), { ...defaultTaskLimits, memoryMb: 16, cpuTimeMs: 10_000, timeoutMs: 300 });
});
