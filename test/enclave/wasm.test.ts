import { test } from "node:test";
import assert from "node:assert/strict";
import { isWasmProgram, runWasmProgram } from "../../src/enclave/executors/wasm.ts";
import { ProgramError } from "../../src/enclave/executors/program-error.ts";
import { loadOrCreateKeys } from "../../src/enclave/keys.ts";
import { runJob } from "../../src/enclave/job-runner.ts";
import type { EnclaveContext } from "../../src/enclave/jobs/job-module.ts";
import { toHex } from "../../src/crypto/bytes.ts";
import { decryptResult } from "../../src/protocol/result.ts";
import type { TaskLimits } from "../../src/protocol/task.ts";
import { sha256 } from "viem";
import { bindingFor, makeTask, runTask, tempDir, withDigests } from "./task-fixture.ts";

const limits: TaskLimits = { memoryMb: 16, cpuTimeMs: 1_000, timeoutMs: 1_000, maxOutputBytes: 1024 };

// Hand-assembled WebAssembly 1.0 binaries. A section is: id byte, u32 LEB
// size, contents; a vector is: u32 LEB count, items. All numbers used here are
// below 128, so their LEB128 encoding is the number itself unless noted.
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1
const section = (id: number, contents: number[]) => [id, contents.length, ...contents];
const name = (s: string) => [s.length, ...new TextEncoder().encode(s)];
const I32 = 0x7f;
const I64 = 0x7e;

// type 0: (i32) -> i32 for alloc; type 1: (i32, i32) -> i64 for run.
const TYPES = section(1, [2, 0x60, 1, I32, 1, I32, 0x60, 2, I32, I32, 1, I64]);
const FUNCS = section(3, [2, 0, 1]); // func 0 has type 0 (alloc), func 1 type 1 (run)
const memory = (initial: number) => section(5, [1, 0x00, initial]); // one memory, flags 0 = no maximum
// exports: "memory" -> memory 0 (kind 2), "alloc" -> func 0 (kind 0), "run" -> func 1 (kind 0)
const EXPORTS = section(7, [3, ...name("memory"), 0x02, 0, ...name("alloc"), 0x00, 0, ...name("run"), 0x00, 1]);
// alloc: no locals; i32.const 1024 (signed LEB 0x80 0x08); end
const ALLOC_BODY = [0x00, 0x41, 0x80, 0x08, 0x0b];
// i64.extend_i32_u(local 0) << 32, i.e. the pointer in the high half
const PTR_HIGH = [0x20, 0, 0xad, 0x42, 32, 0x86];
// run (echo): (ptr << 32) | i64.extend_i32_u(len); i64.or; end
const ECHO_BODY = [0x00, ...PTR_HIGH, 0x20, 1, 0xad, 0x84, 0x0b];
// run (spin): loop (void) br 0 end; i64.const 0; end
const SPIN_BODY = [0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x42, 0x00, 0x0b];
// run (big): i64.const 65536 (signed LEB 0x80 0x80 0x04), i.e. ptr 0, len 65536; end
const BIG_BODY = [0x00, 0x42, 0x80, 0x80, 0x04, 0x0b];
// run (grow): i32.store(ptr, memory.grow(1000)) with i32.const 1000 = LEB 0xe8 0x07;
// then (ptr << 32) | 4: the 4-byte little-endian result of memory.grow
const GROW_BODY = [0x00, 0x20, 0, 0x41, 0xe8, 0x07, 0x40, 0x00, 0x36, 0x02, 0x00, ...PTR_HIGH, 0x42, 4, 0x84, 0x0b];
// run (trap): unreachable; end
const TRAP_BODY = [0x00, 0x00, 0x0b];
const code = (runBody: number[]) => section(10, [2, ALLOC_BODY.length, ...ALLOC_BODY, runBody.length, ...runBody]);

function module(runBody: number[], opts: { imports?: number[]; memory?: number[] } = {}): Uint8Array {
  return Uint8Array.from([...HEADER, ...TYPES, ...(opts.imports ?? []), ...FUNCS, ...(opts.memory ?? memory(1)), ...EXPORTS, ...code(runBody)]);
}

async function fails(program: Uint8Array, code: string, match?: RegExp, lim = limits): Promise<void> {
  await assert.rejects(runWasmProgram(program, new Uint8Array([1, 2, 3]), lim), (e: unknown) => {
    assert.ok(e instanceof ProgramError, `expected ProgramError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return true;
  });
}

test("the magic bytes select the WebAssembly executor", () => {
  assert.equal(isWasmProgram(module(ECHO_BODY)), true);
  assert.equal(isWasmProgram(new TextEncoder().encode("export default () => 1")), false);
  assert.equal(isWasmProgram(Uint8Array.of(0, 0x61, 0x73)), false);
});

test("echo module returns the input bytes through alloc/run", async () => {
  const input = new Uint8Array([0, 1, 2, 250, 255, 42]);
  const run = await runWasmProgram(module(ECHO_BODY), input, limits);
  assert.deepEqual(run.output, input);
  assert.ok(run.wallMs >= 0 && run.cpuMs >= 0);
  const empty = await runWasmProgram(module(ECHO_BODY), new Uint8Array(0), limits);
  assert.equal(empty.output.length, 0);
});

test("an infinite loop hits the CPU-time limit, or the wall-time limit when that comes first", async () => {
  let started = performance.now();
  await fails(module(SPIN_BODY), "CPU_LIMIT_EXCEEDED", /CPU-time limit of 200 ms/, { ...limits, cpuTimeMs: 200, timeoutMs: 10_000 });
  assert.ok(performance.now() - started < 5_000);
  started = performance.now();
  await fails(module(SPIN_BODY), "TIME_LIMIT_EXCEEDED", /wall-time limit of 150 ms/, { ...limits, cpuTimeMs: 10_000, timeoutMs: 150 });
  assert.ok(performance.now() - started < 2_000);
});

test("a module importing a function is refused: no ambient authority", async () => {
  // import section: one import, module "env", field "log", kind func (0x00) of type 0
  const imports = section(2, [1, ...name("env"), ...name("log"), 0x00, 0]);
  await fails(module(ECHO_BODY, { imports }), "PROGRAM_INVALID", /imports "env\.log".*no ambient authority/);
});

test("output larger than the task allows is OUTPUT_LIMIT_EXCEEDED", async () => {
  await fails(module(BIG_BODY), "OUTPUT_LIMIT_EXCEEDED", /65536 bytes; the task allows 1024/);
  // 65536 bytes fit in one page, so the same module passes with a larger limit
  const run = await runWasmProgram(module(BIG_BODY), new Uint8Array(0), { ...limits, maxOutputBytes: 1 << 16 });
  assert.equal(run.output.length, 1 << 16);
});

test("garbage after the magic is PROGRAM_INVALID", async () => {
  await fails(Uint8Array.of(...HEADER.slice(0, 4), 0xde, 0xad, 0xbe, 0xef), "PROGRAM_INVALID", /version/);
  await fails(Uint8Array.of(...HEADER, 0xff, 0xff, 0xff), "PROGRAM_INVALID", /truncated/);
  // well-formed section framing, nonsense type section contents: rejected by the compiler
  await fails(Uint8Array.of(...HEADER, ...section(1, [0xde, 0xad, 0xbe])), "PROGRAM_INVALID", /not a valid WebAssembly module/);
});

test("a module without the ABI's exports is PROGRAM_INVALID", async () => {
  await fails(Uint8Array.from([...HEADER, ...memory(1)]), "PROGRAM_INVALID", /missing: memory \(memory\), alloc \(function\), run \(function\)/);
});

test("a trap is PROGRAM_THREW", async () => {
  await fails(module(TRAP_BODY), "PROGRAM_THREW", /unreachable/);
});

test("memory: an initial size above the limit is refused, growth stops at the limit", async () => {
  // 16 MB = 256 pages; 300 pages is LEB 0xac 0x02
  await fails(module(ECHO_BODY, { memory: section(5, [1, 0x00, 0xac, 0x02]) }), "MEMORY_LIMIT_EXCEEDED", /300 pages.*16 MB allows 256/);
  const grown = (run: { output: Uint8Array }) => new DataView(run.output.buffer, run.output.byteOffset).getInt32(0, true);
  // 1 + 1000 pages exceed 16 MB: memory.grow fails inside the module (-1)
  assert.equal(grown(await runWasmProgram(module(GROW_BODY), new Uint8Array(0), limits)), -1);
  // with 64 MB (1024 pages) the same growth succeeds and returns the old size, 1 page
  assert.equal(grown(await runWasmProgram(module(GROW_BODY), new Uint8Array(0), { ...limits, memoryMb: 64 })), 1);
  // a declared maximum above the limit is lowered too (flags 1, initial 1, max 2000 = LEB 0xd0 0x0f)
  assert.equal(grown(await runWasmProgram(module(GROW_BODY, { memory: section(5, [1, 0x01, 1, 0xd0, 0x0f]) }), new Uint8Array(0), limits)), -1);
});

test("a task job dispatches WebAssembly programs by their magic and encrypts errors to the requester", async () => {
  const { keys } = await loadOrCreateKeys(await tempDir("wasm"), new Uint8Array(32).fill(7));
  const ctx: EnclaveContext = { keys, measurement: "ab".repeat(32), teeType: "SGX", simulated: true };
  const identity = {
    signer: keys.account.address,
    hpkePublicKey: toHex(keys.hpke.publicKey),
    provenanceKey: toHex(keys.provenance.spki),
    tlsKey: toHex(keys.tls.spki),
    measurement: ctx.measurement,
    teeType: "SGX" as const,
    simulated: true,
  };
  const seam = { runJob: (request: Parameters<typeof runJob>[1]) => runJob(ctx, request) };
  const runWasm = async (taskId: bigint, wasm: Uint8Array, input: Uint8Array) => {
    const binding = bindingFor(taskId);
    // The fixture builds JS tasks: the key is wrapped for the WebAssembly program patched in below.
    const { params, requester, envelope } = await makeTask(identity, { binding, program: "placeholder", wrapProgram: wasm, input, limits: { cpuTimeMs: 200, timeoutMs: 10_000 } });
    const patched = new TextEncoder().encode(JSON.stringify({ ...envelope, program: { ...envelope.program, digest: sha256(wasm) } }));
    const out = await runTask(seam, withDigests(params, { program: wasm, envelope: patched }));
    return decryptResult(requester.privateKey, binding, out.result);
  };
  const input = new TextEncoder().encode("hello wasm");
  const ok = await runWasm(2001n, module(ECHO_BODY), input);
  assert.equal(ok.outcome, "ok");
  assert.deepEqual(ok.output, input);
  const spun = await runWasm(2002n, module(SPIN_BODY), input);
  assert.equal(spun.outcome, "error");
  assert.equal(spun.error?.code, "CPU_LIMIT_EXCEEDED");
});
