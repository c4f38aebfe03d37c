import { test } from "node:test";
import assert from "node:assert/strict";
import { runJsProgram } from "../../src/enclave/executors/js-isolate.ts";
import { ProgramError } from "../../src/enclave/executors/program-error.ts";
import type { TaskLimits } from "../../src/protocol/task.ts";
import { expectProgramError } from "./program-failure.ts";

const limits: TaskLimits = { memoryMb: 16, cpuTimeMs: 500, timeoutMs: 500, maxOutputBytes: 1024 };
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

const fails = (source: string, code: string, match?: RegExp, lim = limits): Promise<ProgramError> => expectProgramError(source, code, lim, match);

test("echo returns the input bytes", async () => {
  const input = new Uint8Array([0, 1, 2, 250, 255]);
  const run = await runJsProgram("export default function (input) { return input; }", input, limits);
  assert.deepEqual(run.output, input);
  assert.ok(run.wallMs >= 0 && run.cpuMs >= 0);
});

test("async programs and string results (UTF-8) work, and TextDecoder decodes the input", async () => {
  const src = `export default async function (input) {
    await null;
    return "héllo " + new TextDecoder().decode(input).toUpperCase() + " ✓ 𝄞";
  }`;
  const run = await runJsProgram(src, utf8("wörld"), limits);
  assert.equal(text(run.output), "héllo WÖRLD ✓ 𝄞");
});

test("TextEncoder in the sandbox matches the host's", async () => {
  const s = "aé€𝄞\u{10FFFF}";
  const run = await runJsProgram(`export default () => new TextEncoder().encode(${JSON.stringify(s)})`, new Uint8Array(0), limits);
  assert.deepEqual(run.output, utf8(s));
});

test("typed arrays and ArrayBuffers are accepted as output", async () => {
  const run = await runJsProgram("export default () => new Uint16Array([1, 2]).buffer", new Uint8Array(0), limits);
  assert.deepEqual(run.output, new Uint8Array(new Uint16Array([1, 2]).buffer));
});

test("no ambient authority: process, require, fetch, timers, imports are absent", async () => {
  const src = `export default () => JSON.stringify([typeof process, typeof require, typeof fetch, typeof setTimeout,
    typeof setInterval, typeof queueMicrotask === "function" ? "fn" : "none", typeof Buffer, typeof WebAssembly === "object" ? "wasm" : "none", typeof globalThis.crypto])`;
  const run = await runJsProgram(src, new Uint8Array(0), limits);
  const [proc, req, fetch, st, si, , buf, , crypto] = JSON.parse(text(run.output)) as string[];
  for (const t of [proc, req, fetch, st, si, buf, crypto]) assert.equal(t, "undefined");
  await fails(`import fs from "node:fs"; export default () => fs.readFileSync("/etc/passwd");`, "PROGRAM_INVALID", /imports are not available/);
  await fails(`export default async () => (await import("node:fs")).readFileSync("/etc/passwd")`, "PROGRAM_THREW");
});

test("a throwing program yields PROGRAM_THREW with its message", async () => {
  await fails(`export default () => { throw new Error("bad input row 7"); }`, "PROGRAM_THREW", /bad input row 7/);
  await fails(`export default async () => { throw new RangeError("async boom"); }`, "PROGRAM_THREW", /async boom/);
});

test("invalid programs: syntax error, no default export, wrong output type", async () => {
  await fails("export default function (", "PROGRAM_INVALID");
  await fails("export const x = 1;", "PROGRAM_INVALID");
  await fails("export default 42;", "PROGRAM_INVALID", /default export is a number; it must be a function/);
  await fails("export default () => ({ a: 1 })", "PROGRAM_BAD_OUTPUT", /object/);
});

test("an infinite loop hits the wall-time limit when it comes first, sync or async", async () => {
  const lim = { ...limits, timeoutMs: 150 };
  await fails("export default () => { for (;;) {} }", "TIME_LIMIT_EXCEEDED", /150 ms/, lim);
  await fails("export default async () => { await null; for (;;) {} }", "TIME_LIMIT_EXCEEDED", undefined, lim);
  await fails("for (;;) {} export default () => 1;", "TIME_LIMIT_EXCEEDED", undefined, lim);
  // Work the module queues for after its evaluation must not escape the limit while the enclave reads its exports.
  await fails("Promise.resolve().then(() => { for (;;) {} }); export default (x) => x;", "TIME_LIMIT_EXCEEDED", undefined, lim);
  await fails("await null; Promise.resolve().then(() => { for (;;) {} }); export default (x) => x;", "TIME_LIMIT_EXCEEDED", undefined, lim);
});

test("a busy loop hits the CPU-time limit long before the wall-time limit, wherever it runs", async () => {
  const lim = { ...limits, cpuTimeMs: 200, timeoutMs: 10_000 };
  for (const source of [
    "export default () => { for (;;) {} }",
    "export default async () => { await null; for (;;) {} }",
    "for (;;) {} export default () => 1;",
    "Promise.resolve().then(() => { for (;;) {} }); export default (x) => x;",
  ]) {
    const started = performance.now();
    const failure = await fails(source, "CPU_LIMIT_EXCEEDED", /CPU-time limit of 200 ms/, lim);
    assert.ok(failure.cpuMs !== undefined && failure.cpuMs >= 200, `the failure reports the CPU time used (${failure.cpuMs} ms)`);
    // A generous bound: the point is that the 10 s wall-time limit did not stop it.
    assert.ok(performance.now() - started < 5_000, source);
  }
});

test("a program whose promise can never settle (no timers or I/O are left) fails at once, without waiting for the wall-time limit", async () => {
  const started = performance.now();
  await fails("export default () => new Promise(() => {})", "PROGRAM_BAD_OUTPUT", /never settles/, { ...limits, cpuTimeMs: 10_000, timeoutMs: 10_000 });
  await fails("export default async () => { await new Promise(() => {}); }", "PROGRAM_BAD_OUTPUT", /never settles/, { ...limits, cpuTimeMs: 10_000, timeoutMs: 10_000 });
  assert.ok(performance.now() - started < 5_000);
});

test("a program slowed down by busy neighbours is held to its own CPU time, not to its wall time", async () => {
  // Fixed work, sized to about 50 ms of CPU when the program runs alone.
  const work = "export default (input) => { const n = Number(new TextDecoder().decode(input)); let x = 0; for (let i = 0; i < n; i++) x = (x * 31 + i) | 0; return String(x); }";
  const probe = 20_000_000;
  const alone = await runJsProgram(work, utf8(String(probe)), { ...limits, cpuTimeMs: 10_000, timeoutMs: 10_000 });
  const iterations = Math.round((probe * 50) / Math.max(1, alone.cpuMs));
  // Ten isolates spinning to their own limit keep every core busy for about two seconds: the program gets a small
  // share of a core, so its wall time (and isolated-vm's running reading) grows several times faster than its CPU time.
  const spinners = Array.from({ length: 10 }, () =>
    runJsProgram("export default () => { for (;;) {} }", new Uint8Array(0), { ...limits, cpuTimeMs: 400, timeoutMs: 60_000 }).then(
      () => "finished",
      (e: unknown) => (e instanceof ProgramError ? e.code : String(e)),
    ),
  );
  const run = await runJsProgram(work, utf8(String(iterations)), { ...limits, cpuTimeMs: 250, timeoutMs: 60_000 });
  assert.ok(run.cpuMs < 250, `used ${run.cpuMs} ms of CPU`);
  assert.deepEqual(await Promise.all(spinners), Array(10).fill("CPU_LIMIT_EXCEEDED"));
});

test("a memory bomb hits the memory limit", async () => {
  const lim = { ...limits, cpuTimeMs: 5_000, timeoutMs: 5_000 };
  await fails("export default () => { const a = []; for (;;) a.push({ x: a.length, y: [a.length] }); }", "MEMORY_LIMIT_EXCEEDED", /16 MB/, lim);
  await fails("export default () => { const a = []; for (;;) a.push(new Uint8Array(4 << 20)); }", "MEMORY_LIMIT_EXCEEDED", undefined, lim);
});

test("a huge output hits the output limit", async () => {
  await fails("export default () => 'x'.repeat(2000)", "OUTPUT_LIMIT_EXCEEDED", /1024/);
  await fails("export default () => new Uint8Array(1025)", "OUTPUT_LIMIT_EXCEEDED");
  await fails("export default () => '€'.repeat(400)", "OUTPUT_LIMIT_EXCEEDED", /1200 bytes/);
  const ok = await runJsProgram("export default () => new Uint8Array(1024)", new Uint8Array(0), limits);
  assert.equal(ok.output.length, 1024);
});

test("each task gets a fresh isolate: globals do not leak between runs", async () => {
  const src = "export default () => { const seen = globalThis.leak ?? 'none'; globalThis.leak = 'set'; return seen; }";
  assert.equal(text((await runJsProgram(src, new Uint8Array(0), limits)).output), "none");
  assert.equal(text((await runJsProgram(src, new Uint8Array(0), limits)).output), "none");
});
