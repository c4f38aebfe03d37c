/**
 * Runs a WebAssembly program in a fresh V8 isolate (isolated-vm), one per task.
 *
 * ABI (WebAssembly 1.0 binary, no imports): the module exports
 *   - `memory`: its one linear memory,
 *   - `alloc(len: i32) -> i32`: returns a pointer to `len` writable bytes,
 *   - `run(ptr: i32, len: i32) -> i64`: reads the input at `ptr`, returns the
 *     output's location packed as `(outPtr << 32) | outLen` (both unsigned).
 * The host calls `alloc(input.length)`, copies the input there, calls `run`,
 * and copies `outLen` bytes from `outPtr` out of memory.
 *
 * Why an isolate rather than a worker thread: the isolate gives the same
 * interruptible CPU-time and wall-time limits as JS programs (V8 checks for
 * termination on every wasm loop back-edge), a separate heap, and no Node APIs
 * at all.
 *
 * Limits: a module importing anything is refused (no ambient authority); its
 * memory's declared maximum is rewritten to at most `memoryMb` before
 * compilation, so `memory.grow` past the task's limit fails inside the module
 * (returns -1) instead of allocating; an initial size above the limit is
 * refused. V8 allocates memories and tables outside the allocator isolated-vm
 * counts, so both are bounded here: tables (funcref or externref only) may
 * hold at most TABLE_ENTRIES_PER_MB entries per MB of the task's memory limit
 * in all: tables whose initial sizes do not fit together are refused, and
 * each table's maximum is rewritten so that growing them stays within it. CPU time and wall time cover
 * compilation, the start function, `alloc` and `run`.
 */
import ivm from "isolated-vm";
import type { TaskLimits } from "../../protocol/task.ts";
import { runInFreshIsolate, type ProgramRun } from "./fresh-isolate.ts";
import { ProgramError } from "./program-error.ts";

/** `\0asm`: the first four bytes of every WebAssembly binary. */
export const WASM_MAGIC = Uint8Array.of(0x00, 0x61, 0x73, 0x6d);

const PAGES_PER_MB = 16;
/**
 * A table entry costs V8 about 40 bytes (10M entries took 384 MB); 1024 entries per MB keeps every table
 * together under 4% of the memory limit, far more than compiled code needs for indirect calls.
 */
export const TABLE_ENTRIES_PER_MB = 1024;
const IMPORT_SECTION = 2;
const TABLE_SECTION = 4;
const MEMORY_SECTION = 5;
const FUNCREF = 0x70;
const EXTERNREF = 0x6f;

export function isWasmProgram(program: Uint8Array): boolean {
  return program.length >= WASM_MAGIC.length && WASM_MAGIC.every((b, i) => program[i] === b);
}

type RunnerResult = { bytes: Uint8Array } | { tooLarge: number } | { badOutput: string } | { invalid: string };

export async function runWasmProgram(program: Uint8Array, input: Uint8Array, limits: TaskLimits): Promise<ProgramRun> {
  const bounded = boundModule(program, limits.memoryMb * PAGES_PER_MB, limits.memoryMb);
  const { value: result, wallMs, cpuMs } = await runInFreshIsolate(limits, "trapped", (isolate) => execute(isolate, bounded, input, limits));
  if ("invalid" in result) throw new ProgramError("PROGRAM_INVALID", result.invalid);
  if ("badOutput" in result) throw new ProgramError("PROGRAM_BAD_OUTPUT", result.badOutput);
  if ("tooLarge" in result || result.bytes.length > limits.maxOutputBytes) {
    const size = "tooLarge" in result ? result.tooLarge : result.bytes.length;
    throw new ProgramError("OUTPUT_LIMIT_EXCEEDED", `program output is ${size} bytes; the task allows ${limits.maxOutputBytes}`);
  }
  return { output: result.bytes, wallMs, cpuMs };
}

/** The context is made synchronously (fixed cost, cheaper than a hand-off to the isolate's thread); the program's work stays asynchronous. */
async function execute(isolate: ivm.Isolate, module: Uint8Array, input: Uint8Array, limits: TaskLimits): Promise<RunnerResult> {
  const context = isolate.createContextSync();
  const args = [new ivm.ExternalCopy(module).copyInto({ release: true }), new ivm.ExternalCopy(input).copyInto({ release: true }), limits.maxOutputBytes];
  return (await context.evalClosure(WASM_RUNNER, args, { timeout: limits.timeoutMs, result: { copy: true } })) as RunnerResult;
}

/** Evaluated inside the isolate: $0 module bytes, $1 input, $2 output limit. */
const WASM_RUNNER = String.raw`
  const [bytes, input, maxOutput] = [$0, $1, $2];
  let module;
  try { module = new WebAssembly.Module(bytes); }
  catch (e) { return { invalid: "program is not a valid WebAssembly module: " + e.message }; }
  const kinds = Object.fromEntries(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  const missing = [["memory", "memory"], ["alloc", "function"], ["run", "function"]].filter(([n, k]) => kinds[n] !== k).map(([n, k]) => n + " (" + k + ")");
  if (missing.length) return { invalid: "the WebAssembly module must export memory, alloc and run; missing: " + missing.join(", ") };
  const { memory, alloc, run } = new WebAssembly.Instance(module, {}).exports;
  const ptr = alloc(input.length) >>> 0;
  if (ptr + input.length > memory.buffer.byteLength) {
    return { badOutput: "alloc(" + input.length + ") returned " + ptr + ", outside the module's " + memory.buffer.byteLength + "-byte memory" };
  }
  new Uint8Array(memory.buffer, ptr, input.length).set(input);
  const packed = run(ptr, input.length);
  if (typeof packed !== "bigint") return { badOutput: "run must return an i64 (outPtr << 32 | outLen), got a " + typeof packed };
  const outPtr = Number(BigInt.asUintN(64, packed) >> 32n);
  const outLen = Number(BigInt.asUintN(32, packed));
  if (outLen > maxOutput) return { tooLarge: outLen };
  if (outPtr + outLen > memory.buffer.byteLength) {
    return { badOutput: "run returned output at " + outPtr + ".." + (outPtr + outLen) + ", outside the module's " + memory.buffer.byteLength + "-byte memory" };
  }
  return { bytes: new Uint8Array(memory.buffer.slice(outPtr, outPtr + outLen)) };
`;

/**
 * Scans the section headers (the isolate's compiler validates everything
 * else): refuses imports, a shared or 64-bit memory, more than one memory, or
 * an initial size above `maxPages`; rewrites the memory maximum to at most
 * `maxPages`. Returns the module to compile.
 */
function boundModule(program: Uint8Array, maxPages: number, memoryMb: number): Uint8Array {
  const reader = new Reader(program);
  reader.bytes(4);
  const version = reader.bytes(4);
  if (version.some((b, i) => b !== [1, 0, 0, 0][i])) {
    throw invalid(`WebAssembly binary version is ${Array.from(version).join(".")}; only version 1 (MVP binary format) is supported`);
  }
  const out: Uint8Array[] = [program.subarray(0, 8)];
  while (!reader.done()) {
    const sectionStart = reader.offset;
    const id = reader.byte();
    const size = reader.u32();
    const body = new Reader(reader.bytes(size));
    if (id === IMPORT_SECTION && body.u32() > 0) {
      const name = `${body.name()}.${body.name()}`;
      throw invalid(`the WebAssembly module imports "${name}": imports are not available in the sandbox (no ambient authority); the module must be self-contained`);
    }
    if (id === TABLE_SECTION) {
      out.push(boundTables(body, memoryMb));
      continue;
    }
    if (id !== MEMORY_SECTION) {
      out.push(program.subarray(sectionStart, reader.offset));
      continue;
    }
    const count = body.u32();
    if (count > 1) throw invalid(`the WebAssembly module defines ${count} memories; at most one is allowed`);
    if (count === 0) {
      out.push(program.subarray(sectionStart, reader.offset));
      continue;
    }
    const flags = body.byte();
    if (flags > 1) throw invalid(`the module's memory has limit flags 0x${flags.toString(16)}; shared and 64-bit memories are not supported`);
    const initial = body.u32();
    const declaredMax = flags === 1 ? body.u32() : maxPages;
    if (initial > maxPages) {
      throw new ProgramError("MEMORY_LIMIT_EXCEEDED", `the module's initial memory is ${initial} pages (64 KiB each); the task's memory limit of ${memoryMb} MB allows ${maxPages}`);
    }
    const contents = [...leb(1), 1, ...leb(initial), ...leb(Math.min(declaredMax, maxPages)), ...body.rest()];
    out.push(Uint8Array.of(MEMORY_SECTION, ...leb(contents.length), ...contents));
  }
  return concat(out);
}

/**
 * The table section with every table's maximum within the task's table budget: the initial sizes must fit
 * in it together, and what is left is room to grow, given to the tables in order up to their declared maximum.
 */
function boundTables(body: Reader, memoryMb: number): Uint8Array {
  const budget = memoryMb * TABLE_ENTRIES_PER_MB;
  const tables: { type: number; initial: number; declaredMax: number }[] = [];
  const count = body.u32();
  for (let i = 0; i < count; i++) {
    const type = body.byte();
    if (type !== FUNCREF && type !== EXTERNREF) {
      throw invalid(`the module's table ${i} has type 0x${type.toString(16)}; only funcref and externref tables without an initializer expression are supported`);
    }
    const flags = body.byte();
    if (flags > 1) throw invalid(`the module's table ${i} has limit flags 0x${flags.toString(16)}; shared and 64-bit tables are not supported`);
    const initial = body.u32();
    tables.push({ type, initial, declaredMax: flags === 1 ? body.u32() : Infinity });
  }
  const initials = tables.reduce((n, t) => n + t.initial, 0);
  if (initials > budget) {
    throw new ProgramError(
      "MEMORY_LIMIT_EXCEEDED",
      `the module's tables start with ${initials} entries in all; the task's memory limit of ${memoryMb} MB allows ${budget} table entries (${TABLE_ENTRIES_PER_MB} per MB)`,
    );
  }
  let room = budget - initials;
  const contents = [...leb(count)];
  for (const { type, initial, declaredMax } of tables) {
    const max = Math.max(initial, Math.min(declaredMax, initial + room));
    room -= max - initial;
    contents.push(type, 1, ...leb(initial), ...leb(max));
  }
  contents.push(...body.rest());
  return Uint8Array.of(TABLE_SECTION, ...leb(contents.length), ...contents);
}

class Reader {
  offset = 0;
  private readonly data: Uint8Array;

  constructor(data: Uint8Array) {
    this.data = data;
  }

  done(): boolean {
    return this.offset >= this.data.length;
  }

  byte(): number {
    const b = this.data[this.offset];
    if (b === undefined) throw invalid(`the WebAssembly module is truncated at byte ${this.offset}`);
    this.offset++;
    return b;
  }

  bytes(n: number): Uint8Array {
    if (this.offset + n > this.data.length) throw invalid(`the WebAssembly module is truncated: ${n} bytes needed at byte ${this.offset}`);
    this.offset += n;
    return this.data.subarray(this.offset - n, this.offset);
  }

  u32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) break;
        return value;
      }
    }
    throw invalid(`the WebAssembly module has a malformed u32 before byte ${this.offset}`);
  }

  name(): string {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }

  rest(): Uint8Array {
    return this.bytes(this.data.length - this.offset);
  }
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    const b = value % 128;
    value = Math.floor(value / 128);
    out.push(value > 0 ? b | 0x80 : b);
  } while (value > 0);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function invalid(message: string): ProgramError {
  return new ProgramError("PROGRAM_INVALID", message);
}
