/**
 * The one way programs run: in a fresh isolated-vm isolate with the task's
 * memory limit, stopped at its CPU-time limit (by the CPU watchdog) or its
 * wall-time limit, whichever comes first (the isolate is disposed, which also
 * ends pending async work), and always disposed afterwards. Whatever escapes
 * becomes a typed ProgramError.
 */
import ivm from "isolated-vm";
import type { TaskLimits } from "../../protocol/task.ts";
import { watchCpuTime } from "./cpu-watchdog.ts";
import { ProgramError } from "./program-error.ts";
import { programText } from "./program-text.ts";

/** isolated-vm refuses heaps under 8 MB. */
const MIN_MEMORY_MB = 8;

export interface ProgramRun {
  output: Uint8Array;
  wallMs: number;
  cpuMs: number;
}

export interface IsolateRun<T> {
  value: T;
  wallMs: number;
  cpuMs: number;
}

/** `failure` names what a program does when it fails ("threw" for JS, "trapped" for WebAssembly). */
export async function runInFreshIsolate<T>(limits: TaskLimits, failure: string, work: (isolate: ivm.Isolate) => Promise<T>): Promise<IsolateRun<T>> {
  const isolate = new ivm.Isolate({ memoryLimit: Math.max(MIN_MEMORY_MB, limits.memoryMb) });
  const started = performance.now();
  let stopped: ProgramError | undefined;
  let stopRun: (error: ProgramError) => void = () => {};
  const stop = new Promise<never>((_, reject) => {
    stopRun = (error) => {
      stopped ??= error;
      reject(stopped);
      if (!isolate.isDisposed) isolate.dispose();
    };
  });
  const timer = setTimeout(() => stopRun(timeLimit(limits)), limits.timeoutMs);
  const cpuWatch = watchCpuTime(isolate, limits.cpuTimeMs, () => stopRun(cpuLimit(limits)));
  try {
    const value = await Promise.race([work(isolate), stop]);
    // A run that finished within a watchdog tick of going over its limit still fails.
    const cpuMs = cpuWatch.finish();
    if (stopped) throw stopped;
    return { value, wallMs: performance.now() - started, cpuMs };
  } catch (e) {
    throw (stopped ?? classify(e, isolate, limits, failure)).withCpuMs(cpuWatch.finish());
  } finally {
    clearTimeout(timer);
    cpuWatch.end();
    if (!isolate.isDisposed) isolate.dispose();
  }
}

function classify(e: unknown, isolate: ivm.Isolate, limits: TaskLimits, failure: string): ProgramError {
  if (e instanceof ProgramError) return e;
  const message = messageOf(e);
  // isolated-vm's own `timeout` option, set to the wall-time limit on the program's steps.
  if (/Script execution timed out/.test(message)) return timeLimit(limits);
  if (isMemoryLimitMessage(message) || (isolate.isDisposed && /disposed/i.test(message))) return memoryLimit(limits);
  // Here the message was read by isolated-vm (the program's getters may have run, within its limits): bound it now.
  return new ProgramError("PROGRAM_THREW", `program ${failure}: ${programText(message, limits)}`, { cause: e });
}

/** V8's and isolated-vm's messages when an allocation fails at the memory limit. */
export function isMemoryLimitMessage(message: string): boolean {
  return /memory limit|Array buffer allocation failed|Out of memory/i.test(message);
}

export function memoryLimit(limits: TaskLimits): ProgramError {
  return new ProgramError("MEMORY_LIMIT_EXCEEDED", `program exceeded the task's memory limit of ${limits.memoryMb} MB`);
}

function timeLimit(limits: TaskLimits): ProgramError {
  return new ProgramError("TIME_LIMIT_EXCEEDED", `program ran longer than the task's wall-time limit of ${limits.timeoutMs} ms`);
}

function cpuLimit(limits: TaskLimits): ProgramError {
  return new ProgramError("CPU_LIMIT_EXCEEDED", `program used more than the task's CPU-time limit of ${limits.cpuTimeMs} ms`);
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
