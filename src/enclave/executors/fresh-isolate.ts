/**
 * The one way programs run: in a fresh isolated-vm isolate with the task's
 * memory limit, stopped at its time limit (the isolate is disposed, which also
 * ends pending async work), and always disposed afterwards. Whatever escapes
 * becomes a typed ProgramError.
 */
import ivm from "isolated-vm";
import type { TaskLimits } from "../../protocol/task.ts";
import { ProgramError } from "./program-error.ts";

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
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(timeLimit(limits));
      if (!isolate.isDisposed) isolate.dispose();
    }, limits.timeoutMs);
  });
  try {
    const value = await Promise.race([work(isolate), deadline]);
    return { value, wallMs: performance.now() - started, cpuMs: Number(isolate.cpuTime) / 1e6 };
  } catch (e) {
    throw classify(e, isolate, timedOut, limits, failure);
  } finally {
    clearTimeout(timer);
    if (!isolate.isDisposed) isolate.dispose();
  }
}

function classify(e: unknown, isolate: ivm.Isolate, timedOut: boolean, limits: TaskLimits, failure: string): ProgramError {
  if (e instanceof ProgramError) return e;
  const message = messageOf(e);
  if (timedOut || /Script execution timed out/.test(message)) return timeLimit(limits);
  if (/memory limit|Array buffer allocation failed|Out of memory/i.test(message) || (isolate.isDisposed && /disposed/i.test(message))) {
    return new ProgramError("MEMORY_LIMIT_EXCEEDED", `program exceeded the task's memory limit of ${limits.memoryMb} MB`);
  }
  return new ProgramError("PROGRAM_THREW", `program ${failure}: ${message}`, { cause: e });
}

function timeLimit(limits: TaskLimits): ProgramError {
  return new ProgramError("TIME_LIMIT_EXCEEDED", `program ran longer than the task's time limit of ${limits.timeoutMs} ms`);
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
