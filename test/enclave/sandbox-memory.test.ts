/**
 * Memory a program could allocate outside the isolate's memory limit (issue
 * 10): WebAssembly memories and tables and resizable ArrayBuffers live outside
 * the allocator isolated-vm counts. A JS program can reach none of them; a
 * WebAssembly program's memory and tables are bounded by its task's memoryMb.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runJsProgram } from "../../src/enclave/executors/js-isolate.ts";
import { runWasmProgram } from "../../src/enclave/executors/wasm.ts";
import { ProgramError } from "../../src/enclave/executors/program-error.ts";
import type { TaskLimits } from "../../src/protocol/task.ts";

const limits: TaskLimits = { memoryMb: 16, cpuTimeMs: 2_000, timeoutMs: 2_000, maxOutputBytes: 1024 };
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function fails(run: Promise<unknown>, code: string, match?: RegExp): Promise<void> {
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof ProgramError, `expected ProgramError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return true;
  });
}

const js = (source: string) => runJsProgram(source, new Uint8Array(0), limits);

test("a JS program cannot allocate WebAssembly memory beyond its limit: there is no WebAssembly", async () => {
  // 128 MiB twice under a 16 MB limit (the probe used 1 GiB twice).
  await fails(js("export default () => { const m = [new WebAssembly.Memory({ initial: 2048 }), new WebAssembly.Memory({ initial: 2048 })]; for (const x of m) new Uint8Array(x.buffer).fill(1); return 'ok'; }"), "PROGRAM_THREW", /WebAssembly is not defined/);
  await fails(js("export default () => { new WebAssembly.Table({ initial: 1e6, element: 'anyfunc' }); return 'ok'; }"), "PROGRAM_THREW", /WebAssembly is not defined/);
});

test("no path leads back to WebAssembly, SharedArrayBuffer or a resizable ArrayBuffer", async () => {
  const probe = `export default () => {
    const names = Reflect.ownKeys(globalThis).map(String);
    const seen = new Set();
    const found = [];
    const walk = (o, depth) => {
      if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o) || depth > 4) return;
      seen.add(o);
      for (const k of Reflect.ownKeys(o)) {
        const d = Object.getOwnPropertyDescriptor(o, k);
        for (const v of [d.value, d.get, d.set]) {
          if (v === undefined) continue;
          if (typeof v === "function" && /^(Memory|Table|Module|Instance|Global|Tag|SharedArrayBuffer)$/.test(v.name)) found.push(String(k));
          if (v && typeof v === "object" && Object.prototype.toString.call(v) === "[object WebAssembly]") found.push(String(k));
          walk(v, depth + 1);
        }
      }
    };
    walk(globalThis, 0);
    const ab = new Uint8Array(1).buffer.constructor;
    let resizable = "refused";
    try { new ab(8, { maxByteLength: 1 << 27 }); resizable = "made"; } catch {}
    try { new ArrayBuffer(8, { maxByteLength: 1 << 27 }); resizable = "made"; } catch {}
    try { Reflect.construct(ArrayBuffer, [8, { maxByteLength: 1 << 27 }]); resizable = "made"; } catch {}
    try { class B extends ArrayBuffer {} new B(8, { maxByteLength: 1 << 27 }); resizable = "made"; } catch {}
    return JSON.stringify({ wasm: names.includes("WebAssembly"), sab: typeof SharedArrayBuffer, found, resizable,
      resize: typeof ArrayBuffer.prototype.resize, same: ab === ArrayBuffer, view: ArrayBuffer.isView(new Uint8Array(1)), instance: new Uint8Array(1).buffer instanceof ArrayBuffer });
  }`;
  const seen = JSON.parse(text((await js(probe)).output));
  assert.deepEqual(seen, { wasm: false, sab: "undefined", found: [], resizable: "refused", resize: "undefined", same: true, view: true, instance: true });
});

test("a resizable ArrayBuffer grown past the limit is refused (it would escape the memory limit)", async () => {
  await fails(js("export default () => { const b = new ArrayBuffer(0, { maxByteLength: 1 << 28 }); b.resize(1 << 27); new Uint8Array(b).fill(1); return String(b.byteLength); }"), "PROGRAM_THREW", /resizable ArrayBuffers/);
});

test("ordinary ArrayBuffers still work, including transfer, and count against the limit", async () => {
  const run = await js("export default () => { const b = new ArrayBuffer(4); new Uint8Array(b).set([1, 2, 3, 4]); const t = b.transfer(2); return t; }");
  assert.deepEqual(run.output, Uint8Array.of(1, 2));
  await fails(js("export default () => new ArrayBuffer(8).transfer(1 << 27)"), "MEMORY_LIMIT_EXCEEDED");
});

// WebAssembly programs: hand-assembled modules (see wasm.test.ts for the encoding).
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const leb = (n: number) => { const out: number[] = []; do { let b = n & 0x7f; n = Math.floor(n / 128); if (n) b |= 0x80; out.push(b); } while (n); return out; };
const section = (id: number, contents: number[]) => [id, ...leb(contents.length), ...contents];
const name = (s: string) => [s.length, ...new TextEncoder().encode(s)];
const TYPES = section(1, [2, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 2, 0x7f, 0x7f, 1, 0x7e]);
const FUNCS = section(3, [2, 0, 1]);
const MEMORY = section(5, [1, 0x00, 1]);
const EXPORTS = section(7, [3, ...name("memory"), 0x02, 0, ...name("alloc"), 0x00, 0, ...name("run"), 0x00, 1]);
const ALLOC_BODY = [0x00, 0x41, 0x80, 0x08, 0x0b];
const PTR_HIGH = [0x20, 0, 0xad, 0x42, 32, 0x86];
/** run: i32.store(ptr, table.grow(0, ref.null func, n)); returns the 4 bytes at ptr. */
const tableGrowBody = (n: number) => [0x00, 0x20, 0, 0xd0, 0x70, 0x41, ...sleb(n), 0xfc, 15, 0, 0x36, 0x02, 0x00, ...PTR_HIGH, 0x42, 4, 0x84, 0x0b];
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; } out.push(b | 0x80); }
}
const code = (runBody: number[]) => section(10, [2, ALLOC_BODY.length, ...ALLOC_BODY, ...leb(runBody.length), ...runBody]);
/** A module with the given table section contents (a vector of table types). */
const withTables = (tables: number[], runBody = tableGrowBody(0)) =>
  Uint8Array.from([...HEADER, ...TYPES, ...FUNCS, ...section(4, tables), ...MEMORY, ...EXPORTS, ...code(runBody)]);
const FUNCREF = 0x70;
const i32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
const wasm = (module: Uint8Array) => runWasmProgram(module, new Uint8Array(0), limits);

test("a WebAssembly table whose initial size is over the task's budget is refused (the probe reached 384 MB with 10M entries)", async () => {
  await fails(wasm(withTables([1, FUNCREF, 0x00, ...leb(10_000_000)])), "MEMORY_LIMIT_EXCEEDED", /table/);
  await fails(wasm(withTables([2, FUNCREF, 0x00, ...leb(10_000), FUNCREF, 0x00, ...leb(10_000)])), "MEMORY_LIMIT_EXCEEDED", /table/);
});

test("a WebAssembly table cannot grow past the task's budget: table.grow returns -1 inside the module", async () => {
  const grown = await wasm(withTables([1, FUNCREF, 0x00, 1], tableGrowBody(5_000_000)));
  assert.equal(i32(grown.output), -1);
  const declaredMax = await wasm(withTables([1, FUNCREF, 0x01, 1, ...leb(9_000_000)], tableGrowBody(5_000_000)));
  assert.equal(i32(declaredMax.output), -1);
  const small = await wasm(withTables([1, FUNCREF, 0x00, 1], tableGrowBody(100)));
  assert.equal(i32(small.output), 1, "a small growth within the budget succeeds and returns the old size");
});

test("tables of other element types or with an initializer expression are refused as PROGRAM_INVALID", async () => {
  await fails(wasm(withTables([1, 0x40, 0x00, FUNCREF, 0x00, 1, 0xd0, 0x70, 0x0b])), "PROGRAM_INVALID", /table/);
  await fails(wasm(withTables([1, FUNCREF, 0x04, 1])), "PROGRAM_INVALID", /table/);
});
