/**
 * Runs a JS program in a fresh V8 isolate (isolated-vm), one per task.
 *
 * A program is an ES module whose default export takes the input bytes
 * (Uint8Array) and returns bytes (Uint8Array, any typed array, ArrayBuffer) or
 * a string (encoded as UTF-8), synchronously or as a promise. The isolate has
 * the JavaScript language and the prelude's TextEncoder/TextDecoder, nothing
 * else: no fs, network, process, environment, timers, imports or host
 * callbacks, and none of what V8 allocates outside the memory limit
 * (WebAssembly, SharedArrayBuffer, resizable ArrayBuffers; see the prelude).
 * Limits: heap (memoryMb, counted by V8 including array buffers),
 * CPU time (cpuTimeMs) and wall time (timeoutMs), both covering module
 * evaluation and the call, async continuations included, and output size.
 */
import ivm from "isolated-vm";
import type { TaskLimits } from "../../protocol/task.ts";
import { isMemoryLimitMessage, memoryLimit, messageOf, runInFreshIsolate, type ProgramRun } from "./fresh-isolate.ts";
import { ProgramError } from "./program-error.ts";
import { programText, programTextBudget } from "./program-text.ts";
import { SANDBOX_PRELUDE } from "./sandbox-prelude.ts";

export type { ProgramRun } from "./fresh-isolate.ts";

type RunnerRecord =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "tooLarge"; size: number }
  | { kind: "badType"; what: string }
  | { kind: "threw"; name: string; text: string; length: number }
  | { kind: "pending" };

export async function runJsProgram(source: string, input: Uint8Array, limits: TaskLimits): Promise<ProgramRun> {
  const { value: record, wallMs, cpuMs } = await runInFreshIsolate(limits, "threw", (isolate) => execute(isolate, source, input, limits));
  return { output: outputOf(record, limits), wallMs, cpuMs };
}

function outputOf(record: RunnerRecord, limits: TaskLimits): Uint8Array {
  switch (record.kind) {
    case "bytes":
      if (record.bytes.length > limits.maxOutputBytes) throw outputTooLarge(record.bytes.length, limits);
      return record.bytes;
    case "tooLarge":
      throw outputTooLarge(record.size, limits);
    case "badType":
      throw new ProgramError("PROGRAM_BAD_OUTPUT", `program returned ${/^[aeiou]/.test(record.what) ? "an" : "a"} ${record.what}; it must return a Uint8Array (or another typed array or DataView), an ArrayBuffer or a string, or a promise of one`);
    case "threw":
      // An allocation the memory limit refused surfaces as a RangeError the program did not catch.
      if (record.name === "RangeError" && isMemoryLimitMessage(record.text)) throw memoryLimit(limits);
      throw new ProgramError("PROGRAM_THREW", `program threw ${record.name === "string" ? "a string" : record.name}: ${programText(record.text, limits, record.length)}`);
    case "pending":
      throw new ProgramError("PROGRAM_BAD_OUTPUT", "program returned a promise that never settles: nothing in the sandbox (no timers, no I/O) is left that could settle it");
  }
}

function outputTooLarge(size: number, limits: TaskLimits): ProgramError {
  return new ProgramError("OUTPUT_LIMIT_EXCEEDED", `program output is at least ${size} bytes; the task allows ${limits.maxOutputBytes}`);
}

/**
 * V8's code cache of the prelude and the runner. Both are fixed sources, so the first run keeps the cached
 * data V8 makes when compiling them, and later isolates load it instead of parsing and compiling them
 * again. It is made from those sources alone, before any program is compiled, so it holds nothing of a
 * task. V8 checks it against the source, its version and its flags; when it refuses the data, that run
 * compiles the source in full and the next one makes the cache again.
 */
interface CodeCache {
  data?: ivm.ExternalCopy<ArrayBuffer>;
}

/** What isolated-vm sets on a compiled script or module when asked to produce or consume cached data. */
interface CompiledWithCache {
  cachedData?: ivm.ExternalCopy<ArrayBuffer>;
  cachedDataRejected?: boolean;
}

const preludeCache: CodeCache = {};

function codeCacheOptions(cache: CodeCache): ivm.CachedDataOptions {
  return cache.data ? { cachedData: cache.data } : { produceCachedData: true };
}

function keepCodeCache(cache: CodeCache, compiled: ivm.Script | ivm.Module): void {
  const { cachedData, cachedDataRejected } = compiled as unknown as CompiledWithCache;
  if (!cache.data) cache.data = cachedData;
  else if (cachedDataRejected) cache.data = undefined;
}

/**
 * Steps whose work is small and fixed (context, prelude, linking, reading the
 * program's default export from its namespace, which has no getters and so
 * runs no program code, reading the runner's record) use isolated-vm's
 * synchronous calls: each async call costs a hand-off to the isolate's thread
 * and back, which cost more CPU than the step itself. Steps whose cost the
 * program decides (compiling its source, evaluating it, calling it) stay
 * asynchronous, so a large or slow program never blocks the enclave's event
 * loop and the CPU watchdog and the wall-time limit can stop it. isolated-vm's
 * `timeout` option counts wall time, so it is the wall-time limit everywhere;
 * the CPU limit is the watchdog's.
 *
 * The prelude runs before the program's module is evaluated and hands `run` to
 * the host alone; `run` calls the program's default export and returns `read`,
 * which the host calls once `run`'s task, and with it every microtask the
 * program queued, is over. The record `read` returns has a null prototype and
 * holds only primitives and a fresh Uint8Array, so copying it out runs no
 * program code.
 */
async function execute(isolate: ivm.Isolate, source: string, input: Uint8Array, limits: TaskLimits): Promise<RunnerRecord> {
  const context = isolate.createContextSync();
  const prelude = isolate.compileScriptSync(SANDBOX_PRELUDE, { filename: "cloister-prelude.js", ...codeCacheOptions(preludeCache) });
  keepCodeCache(preludeCache, prelude);
  const run = prelude.runSync(context, { timeout: limits.timeoutMs, release: true, reference: true }) as ivm.Reference<RunFunction>;
  let program: ivm.Module;
  try {
    program = await isolate.compileModule(source, { filename: "program.js" });
  } catch (e) {
    throw new ProgramError("PROGRAM_INVALID", `program is not a valid ES module: ${programText(messageOf(e), limits)}`, { cause: e });
  }
  try {
    program.instantiateSync(context, (specifier) => {
      throw new Error(`imports are not available in the sandbox (the program imports "${specifier}")`);
    });
  } catch (e) {
    throw new ProgramError("PROGRAM_INVALID", `program cannot be linked: ${programText(messageOf(e), limits)}`, { cause: e });
  }
  await program.evaluate({ timeout: limits.timeoutMs });
  const main = program.namespace.getSync("default", { reference: true }) as ivm.Reference<unknown> | undefined;
  if (main === undefined || main.typeof === "undefined") {
    throw new ProgramError("PROGRAM_INVALID", "the program has no default export: it must `export default` a function (input: Uint8Array) => Uint8Array | string");
  }
  if (main.typeof !== "function") {
    throw new ProgramError("PROGRAM_INVALID", `the program's default export is a ${main.typeof}; it must be a function (input: Uint8Array) => Uint8Array | string`);
  }
  const read = (await run.apply(
    undefined,
    [main.derefInto({ release: true }), new ivm.ExternalCopy(input).copyInto({ release: true }), limits.maxOutputBytes, programTextBudget(limits)],
    { timeout: limits.timeoutMs, result: { reference: true } },
  )) as ivm.Reference<() => RunnerRecord>;
  return read.applySync(undefined, [], { timeout: limits.timeoutMs, result: { copy: true } }) as RunnerRecord;
}

type RunFunction = (main: unknown, input: Uint8Array, maxOutputBytes: number, maxTextChars: number) => () => RunnerRecord;
