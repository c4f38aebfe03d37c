/**
 * Runs a JS program in a fresh V8 isolate (isolated-vm), one per task.
 *
 * A program is an ES module whose default export takes the input bytes
 * (Uint8Array) and returns bytes (Uint8Array, any typed array, ArrayBuffer) or
 * a string (encoded as UTF-8), synchronously or as a promise. The isolate has
 * the JavaScript language and the prelude's TextEncoder/TextDecoder, nothing
 * else: no fs, network, process, environment, timers, imports or host
 * callbacks. Limits: heap (memoryMb, counted by V8 including array buffers),
 * CPU time (cpuTimeMs) and wall time (timeoutMs), both covering module
 * evaluation and the call, async continuations included, and output size.
 */
import ivm from "isolated-vm";
import type { TaskLimits } from "../../protocol/task.ts";
import { messageOf, runInFreshIsolate, type ProgramRun } from "./fresh-isolate.ts";
import { ProgramError } from "./program-error.ts";
import { RUNNER_MODULE, SANDBOX_PRELUDE } from "./sandbox-prelude.ts";

export type { ProgramRun } from "./fresh-isolate.ts";

type RunnerResult = { bytes: Uint8Array } | { tooLarge: number } | { badType: string };

export async function runJsProgram(source: string, input: Uint8Array, limits: TaskLimits): Promise<ProgramRun> {
  const { value: result, wallMs, cpuMs } = await runInFreshIsolate(limits, "threw", (isolate) => execute(isolate, source, input, limits));
  if ("tooLarge" in result) {
    throw new ProgramError("OUTPUT_LIMIT_EXCEEDED", `program output is at least ${result.tooLarge} bytes; the task allows ${limits.maxOutputBytes}`);
  }
  if ("badType" in result) {
    throw new ProgramError("PROGRAM_BAD_OUTPUT", `program returned a ${result.badType}; it must return a Uint8Array, an ArrayBuffer or a string`);
  }
  if (result.bytes.length > limits.maxOutputBytes) {
    throw new ProgramError("OUTPUT_LIMIT_EXCEEDED", `program output is ${result.bytes.length} bytes; the task allows ${limits.maxOutputBytes}`);
  }
  return { output: result.bytes, wallMs, cpuMs };
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
const runnerCache: CodeCache = {};

function codeCacheOptions(cache: CodeCache): ivm.CachedDataOptions {
  return cache.data ? { cachedData: cache.data } : { produceCachedData: true };
}

function keepCodeCache(cache: CodeCache, compiled: ivm.Script | ivm.Module): void {
  const { cachedData, cachedDataRejected } = compiled as unknown as CompiledWithCache;
  if (!cache.data) cache.data = cachedData;
  else if (cachedDataRejected) cache.data = undefined;
}

/**
 * Steps whose work is small and fixed (context, prelude, runner, linking two
 * modules, reading an export of the runner's namespace, which has no getters
 * and so runs no program code) use isolated-vm's synchronous calls: each async
 * call costs a hand-off to the isolate's thread and back, which cost more CPU
 * than the step itself. Steps whose cost the program decides (compiling its
 * source, evaluating it, calling it) stay asynchronous, so a large or slow
 * program never blocks the enclave's event loop and the CPU watchdog and the
 * wall-time limit can stop it. isolated-vm's `timeout` option counts wall time,
 * so it is the wall-time limit everywhere; the CPU limit is the watchdog's.
 */
async function execute(isolate: ivm.Isolate, source: string, input: Uint8Array, limits: TaskLimits): Promise<RunnerResult> {
  const context = isolate.createContextSync();
  const prelude = isolate.compileScriptSync(SANDBOX_PRELUDE, { filename: "cloister-prelude.js", ...codeCacheOptions(preludeCache) });
  keepCodeCache(preludeCache, prelude);
  prelude.runSync(context, { timeout: limits.timeoutMs, release: true });
  const runner = isolate.compileModuleSync(RUNNER_MODULE, { filename: "cloister-runner.js", ...codeCacheOptions(runnerCache) });
  keepCodeCache(runnerCache, runner);
  let program: ivm.Module;
  try {
    program = await isolate.compileModule(source, { filename: "program.js" });
  } catch (e) {
    throw new ProgramError("PROGRAM_INVALID", `program is not a valid ES module: ${messageOf(e)}`, { cause: e });
  }
  try {
    runner.instantiateSync(context, (specifier) => {
      if (specifier === "program") return program;
      throw new Error(`imports are not available in the sandbox (the program imports "${specifier}")`);
    });
  } catch (e) {
    throw new ProgramError("PROGRAM_INVALID", `program cannot be linked: ${messageOf(e)}`, { cause: e });
  }
  await runner.evaluate({ timeout: limits.timeoutMs });
  const run = runner.namespace.getSync("run", { reference: true });
  return (await run.apply(undefined, [new ivm.ExternalCopy(input).copyInto({ release: true }), limits.maxOutputBytes], {
    timeout: limits.timeoutMs,
    result: { promise: true, copy: true },
  })) as RunnerResult;
}

