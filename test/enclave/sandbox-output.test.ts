/**
 * Attacks from issue 10 on the way the enclave takes a JS program's output and
 * its thrown errors: whatever the program does to the isolate's intrinsics, the
 * output is exactly the bytes it returned, within maxOutputBytes, or a typed
 * PROGRAM_BAD_OUTPUT / OUTPUT_LIMIT_EXCEEDED error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runJsProgram } from "../../src/enclave/executors/js-isolate.ts";
import type { ProgramError } from "../../src/enclave/executors/program-error.ts";
import type { TaskLimits } from "../../src/protocol/task.ts";
import { expectProgramError } from "./program-failure.ts";

const limits: TaskLimits = { memoryMb: 16, cpuTimeMs: 2_000, timeoutMs: 2_000, maxOutputBytes: 1024 };
const utf8 = (s: string) => new TextEncoder().encode(s);

const fails = (source: string, code: string, match?: RegExp, lim = limits): Promise<ProgramError> => expectProgramError(source, code, lim, match);

/** Tampering that would forge the output if the runner looked any of these up after the program ran. */
const TAMPER = `
  const TA = Object.getPrototypeOf(Uint8Array.prototype);
  Uint8Array.prototype.slice = TA.slice = () => new Uint8Array([6, 6, 6]);
  Uint8Array.prototype.subarray = TA.subarray = () => new Uint8Array([6, 6, 6]);
  Uint8Array.prototype.set = TA.set = () => {};
  for (const p of ["byteLength", "length", "byteOffset", "buffer"]) {
    Object.defineProperty(TA, p, { get() { return p === "buffer" ? new ArrayBuffer(3) : 3; }, configurable: true });
  }
  Object.defineProperty(ArrayBuffer.prototype, "byteLength", { get() { return 3; }, configurable: true });
  ArrayBuffer.isView = () => true;
  Object.defineProperty(Uint8Array, Symbol.hasInstance, { value: () => true });
  Object.defineProperty(ArrayBuffer, Symbol.hasInstance, { value: () => true });
  globalThis.TextEncoder = class { encode() { return new Uint8Array([6, 6, 6]); } };
  String.prototype.charCodeAt = () => 0x36;
  String.prototype.codePointAt = () => 0x36;
  Array.prototype.push = function () { return 0; };
  Promise.prototype.then = function () { for (;;) {} };
`;

test("tampering with the intrinsics the runner uses does not change the output (bytes, ArrayBuffer, typed array, string)", async () => {
  const cases: [string, Uint8Array][] = [
    ["new Uint8Array([1, 2, 3, 4, 5])", Uint8Array.of(1, 2, 3, 4, 5)],
    ["new Uint8Array([9, 1, 2, 3, 4, 5, 9]).subarray(1, 6)", Uint8Array.of(1, 2, 3, 4, 5)],
    ["new Uint16Array([0x0201, 0x0403]).buffer", Uint8Array.of(1, 2, 3, 4)],
    ["new DataView(new Uint8Array([7, 8, 9]).buffer, 1)", Uint8Array.of(8, 9)],
    ['"héllo ✓ 𝄞"', utf8("héllo ✓ 𝄞")],
  ];
  for (const [value, expected] of cases) {
    for (const body of [`return ${value};`, `await null; return ${value};`]) {
      const source = `export default async () => { const out = ${value}; ${TAMPER} ${body.replace(value, "out")} }`;
      const run = await runJsProgram(source, new Uint8Array(0), limits);
      assert.deepEqual(run.output, expected, `${body}`);
    }
  }
});

test("tampering at module evaluation, before the program is called, does not change the output either", async () => {
  const run = await runJsProgram(`${TAMPER} export default (input) => input;`, Uint8Array.of(4, 5), limits);
  assert.deepEqual(run.output, Uint8Array.of(4, 5));
});

test("a fake array-like with a huge claimed length is refused as PROGRAM_BAD_OUTPUT, without copying anything", async () => {
  const started = performance.now();
  await fails("export default () => ({ length: 2 ** 30 })", "PROGRAM_BAD_OUTPUT", /returned an object/);
  await fails(`${TAMPER} export default () => ({ length: 2 ** 30, byteLength: 2 ** 30 })`, "PROGRAM_BAD_OUTPUT");
  assert.ok(performance.now() - started < 1_500, "refusing a fake output costs no time");
});

test("a number, a boolean, null, a symbol and a function are PROGRAM_BAD_OUTPUT, not a crash", async () => {
  for (const [value, what] of [["42", "number"], ["true", "boolean"], ["null", "null"], ["undefined", "undefined"], ["Symbol('x')", "symbol"], ["() => 1", "function"], ["10n", "bigint"]]) {
    await fails(`export default () => ${value}`, "PROGRAM_BAD_OUTPUT", new RegExp(`returned an? ${what}`));
  }
});

test("a Proxy, whether of bytes or of anything, is PROGRAM_BAD_OUTPUT and none of its traps run after the program returns", async () => {
  const trap = "{ get() { for (;;) {} }, getOwnPropertyDescriptor() { for (;;) {} }, ownKeys() { for (;;) {} }, getPrototypeOf() { for (;;) {} }, has() { for (;;) {} } }";
  await fails(`export default () => new Proxy(new Uint8Array(4), ${trap})`, "PROGRAM_BAD_OUTPUT", /object/);
  await fails(`export default () => new Proxy({}, ${trap})`, "PROGRAM_BAD_OUTPUT", /object/);
  await fails(`export default () => new Proxy(new ArrayBuffer(4), ${trap})`, "PROGRAM_BAD_OUTPUT", /object/);
});

test("an object whose getters throw or loop is PROGRAM_BAD_OUTPUT; its getters never run", async () => {
  await fails("export default () => ({ get length() { throw new Error('getter'); }, get byteLength() { for (;;) {} } })", "PROGRAM_BAD_OUTPUT", /object/);
  const bytes = "const b = new Uint8Array(3); Object.defineProperty(b, 'byteLength', { get() { for (;;) {} } }); Object.defineProperty(b, 'constructor', { get() { for (;;) {} } });";
  const run = await runJsProgram(`export default () => { ${bytes} b[0] = 1; return b; }`, new Uint8Array(0), limits);
  assert.deepEqual(run.output, Uint8Array.of(1, 0, 0));
});

test("once a program has returned, none of its code runs: then getters and Promise species are not consulted", async () => {
  const traps = `
    Object.defineProperty(Object.prototype, "then", { get() { for (;;) {} }, configurable: true });
    Object.defineProperty(Promise.prototype, "constructor", { get() { for (;;) {} }, configurable: true });
    Object.defineProperty(Promise, Symbol.species, { get() { for (;;) {} }, configurable: true });`;
  for (const value of ["new Uint8Array([1, 2])", "new Uint8Array([1, 2]).buffer", "'\\x01\\x02'"]) {
    const run = await runJsProgram(`export default () => { ${traps} return ${value}; }`, new Uint8Array(0), limits);
    assert.deepEqual(run.output, Uint8Array.of(1, 2), value);
  }
  await fails(`export default () => { ${traps} return {}; }`, "PROGRAM_BAD_OUTPUT", /object/);
  await fails(`export default () => { ${traps} throw new Error("boom"); }`, "PROGRAM_THREW", /boom/);
});

test("output over maxOutputBytes is refused before any copy, however it is returned", async () => {
  await fails(`${TAMPER} export default () => new Uint8Array(1025)`, "OUTPUT_LIMIT_EXCEEDED", /1025 bytes/);
  await fails(`${TAMPER} export default () => new Uint8Array(new ArrayBuffer(4096), 1)`, "OUTPUT_LIMIT_EXCEEDED", /4095 bytes/);
  await fails(`${TAMPER} export default () => "€".repeat(400)`, "OUTPUT_LIMIT_EXCEEDED", /1200 bytes/);
  await fails(`export default () => "x".repeat(2 ** 20)`, "OUTPUT_LIMIT_EXCEEDED");
});

test("a string output is encoded by the runner's own UTF-8 encoder, lone surrogates as U+FFFD", async () => {
  const run = await runJsProgram(`${TAMPER} export default () => "a\\ud800b€𝄞"`, new Uint8Array(0), limits);
  assert.deepEqual(run.output, utf8("a\ufffdb€𝄞"));
});

test("an honest program still works, and its input is a fresh Uint8Array", async () => {
  const run = await runJsProgram("export default async (input) => { await null; return input instanceof Uint8Array ? input.slice().reverse() : 'no'; }", Uint8Array.of(1, 2, 3), limits);
  assert.deepEqual(run.output, Uint8Array.of(3, 2, 1));
});
