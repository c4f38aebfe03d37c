/**
 * Measures the CPU time each running isolate uses, and stops those that use
 * more than their task allows.
 *
 * Why not isolated-vm's `isolate.cpuTime` alone: in the build the enclave uses
 * it advances with the steady clock whenever the isolate runs, so it is the
 * time the program has been running, including the time the OS gave its core
 * to other threads. With more busy isolates than cores it grows faster than
 * CPU time, up to the wall time (six busy isolates on two cores read about
 * 5 s each after 5 s, while the whole process used 10.5 s of CPU). It never
 * reads less than the CPU time used, and excludes time queued for a thread
 * and time spent awaiting.
 *
 * So the watchdog corrects it with the process's own accounting. Every tick it
 * takes the CPU time the process's threads other than the main one used
 * (`process.cpuUsage()` minus `process.threadCpuUsage()`: the isolates'
 * threads, plus a little for V8's and libuv's helper threads) and shares it
 * among the running isolates in proportion to how much each one's reading
 * grew, never more than that growth. The OS shares cores fairly among busy
 * threads, so the estimate follows each program's CPU time whatever else runs
 * on the machine; the helper threads' part makes it err towards charging a
 * program more, not less. Work isolated-vm does on the main thread (the
 * executors' fixed synchronous steps) is not charged.
 *
 * One timer serves every run in the process and ticks only while runs are
 * active; a program may use up to about one tick of CPU time past its limit
 * (more if the event loop is late) before its isolate is disposed.
 */
import type ivm from "isolated-vm";

/** How often running isolates are checked, ms. */
export const CPU_WATCHDOG_TICK_MS = 10;

export interface CpuWatch {
  /** Brings the estimate up to date (which may call `onExceeded`), stops watching and returns the CPU time used, ms. */
  finish(): number;
  /** Stops watching (idempotent). */
  end(): void;
}

interface Watched {
  isolate: ivm.Isolate;
  limitNs: number;
  onExceeded: () => void;
  /** Last reading of isolate.cpuTime, ns. */
  reading: number;
  /** Estimated CPU time used, ns. */
  estimate: number;
}

const watched = new Set<Watched>();
let timer: ReturnType<typeof setInterval> | undefined;
let lastProcess = process.cpuUsage();
let lastMain = process.threadCpuUsage();

/** Calls `onExceeded` once when `isolate` has used more than `limitMs` of CPU time; the caller then disposes the isolate. */
export function watchCpuTime(isolate: ivm.Isolate, limitMs: number, onExceeded: () => void): CpuWatch {
  const entry: Watched = { isolate, limitNs: limitMs * 1e6, onExceeded, reading: readNs(isolate), estimate: 0 };
  if (watched.size === 0) start();
  watched.add(entry);
  return {
    finish: () => {
      if (watched.has(entry)) tick();
      unwatch(entry);
      return entry.estimate / 1e6;
    },
    end: () => unwatch(entry),
  };
}

function start(): void {
  lastProcess = process.cpuUsage();
  lastMain = process.threadCpuUsage();
  timer = setInterval(tick, CPU_WATCHDOG_TICK_MS);
  // The runs themselves keep the process alive; the watchdog must not.
  timer.unref();
}

function unwatch(entry: Watched): void {
  if (!watched.delete(entry) || watched.size > 0) return;
  clearInterval(timer);
  timer = undefined;
}

function tick(): void {
  const processNow = process.cpuUsage();
  const mainNow = process.threadCpuUsage();
  const processUs = processNow.user + processNow.system - lastProcess.user - lastProcess.system;
  const mainUs = mainNow.user + mainNow.system - lastMain.user - lastMain.system;
  lastProcess = processNow;
  lastMain = mainNow;
  const grown = new Map<Watched, number>();
  let totalGrowth = 0;
  for (const entry of watched) {
    if (entry.isolate.isDisposed) continue;
    const reading = readNs(entry.isolate);
    const growth = Math.max(0, reading - entry.reading);
    entry.reading = reading;
    grown.set(entry, growth);
    totalGrowth += growth;
  }
  const share = totalGrowth > 0 ? Math.min(1, (Math.max(0, processUs - mainUs) * 1e3) / totalGrowth) : 1;
  for (const [entry, growth] of grown) {
    entry.estimate = Math.min(entry.reading, entry.estimate + growth * share);
    if (entry.estimate > entry.limitNs) {
      unwatch(entry);
      entry.onExceeded();
    }
  }
}

function readNs(isolate: ivm.Isolate): number {
  return Number(isolate.cpuTime);
}
