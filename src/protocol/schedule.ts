/**
 * A pipeline's schedule: a five-field cron expression (minute hour
 * day-of-month month day-of-week, UTC; `*`, `*\/n`, `a`, `a-b`, `a-b/n` and
 * lists of them; day-of-week 0-6 from Sunday, 7 = Sunday too) or
 * `@every <n>s|m|h`. A schedule names slots, instants at which a run is due;
 * the candidate enclaves take slots in turn (slotTurn), so every node
 * computes the same turn from the same schedule and candidate list.
 */
import { CloisterError } from "../util/base-error.ts";

export class ScheduleError extends CloisterError<"SCHEDULE_INVALID"> {}

export interface Schedule {
  /** The latest slot at or before `nowSec` (unix seconds), or undefined when none within a year. */
  previous(nowSec: number): number | undefined;
  /** A number that grows by one per slot (which candidate's turn it is). */
  slotIndex(slotSec: number): number;
}

const ranges = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
] as const;

function field(text: string, [lo, hi]: readonly [number, number], name: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new ScheduleError("SCHEDULE_INVALID", `cron ${name} field "${text}" is not *, a number, a range or a list of them`);
    const step = m[4] === undefined ? 1 : Number(m[4]);
    const from = m[1] === "*" ? lo : Number(m[2]);
    const to = m[1] === "*" ? hi : m[3] === undefined ? (m[4] === undefined ? from : hi) : Number(m[3]);
    if (step < 1 || from < lo || to > hi || from > to) throw new ScheduleError("SCHEDULE_INVALID", `cron ${name} field "${text}" is outside ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export function parseSchedule(expr: string): Schedule {
  const every = /^@every\s+(\d+)\s*(s|m|h)$/.exec(expr.trim());
  if (every) {
    const period = Number(every[1]) * { s: 1, m: 60, h: 3600 }[every[2] as "s" | "m" | "h"];
    if (period < 1) throw new ScheduleError("SCHEDULE_INVALID", "@every needs a period of at least 1s");
    return { previous: (now) => Math.floor(now / period) * period, slotIndex: (slot) => Math.floor(slot / period) };
  }
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new ScheduleError("SCHEDULE_INVALID", `schedule "${expr}" is neither five cron fields (e.g. "*/5 * * * *") nor "@every <n>s|m|h"`);
  const names = ["minute", "hour", "day-of-month", "month", "day-of-week"];
  const [min, hour, dom, mon, dow] = parts.map((p, i) => field(p, ranges[i]!, names[i]!)) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  if (dow.has(7)) dow.add(0);
  const domAny = parts[2] === "*";
  const dowAny = parts[4] === "*";
  const matches = (d: Date): boolean => {
    if (!min.has(d.getUTCMinutes()) || !hour.has(d.getUTCHours()) || !mon.has(d.getUTCMonth() + 1)) return false;
    const domOk = dom.has(d.getUTCDate());
    const dowOk = dow.has(d.getUTCDay());
    // Cron's rule: when both day fields are restricted, either may match.
    return domAny || dowAny ? domOk && dowOk : domOk || dowOk;
  };
  return {
    previous(now) {
      let t = Math.floor(now / 60) * 60;
      for (let i = 0; i < 366 * 24 * 60; i++, t -= 60) if (matches(new Date(t * 1000))) return t;
      return undefined;
    },
    slotIndex: (slot) => Math.floor(slot / 60),
  };
}

/**
 * Whose turn slot `slotSec` is among `candidates` (in registration order), and from when each may run it:
 * the slot's own node at once, the next one `failoverAfterSec` later, and so on around the list.
 */
export function slotTurn(schedule: Schedule, slotSec: number, candidates: readonly string[], me: string, failoverAfterSec: number): { mine: boolean; eligibleAt: number } | undefined {
  return turnOf(schedule.slotIndex(slotSec), slotSec, candidates, me, failoverAfterSec);
}

/**
 * The same turns for a run the owner requested (Pipelines.requestRun): its number picks the first candidate, so
 * successive requests go round the list as slots do, and its block's timestamp is the slot's time.
 */
export function requestTurn(request: number, requestedAtSec: number, candidates: readonly string[], me: string, failoverAfterSec: number): { mine: boolean; eligibleAt: number } | undefined {
  return turnOf(request, requestedAtSec, candidates, me, failoverAfterSec);
}

function turnOf(index: number, slotSec: number, candidates: readonly string[], me: string, failoverAfterSec: number): { mine: boolean; eligibleAt: number } | undefined {
  const n = candidates.length;
  const position = candidates.findIndex((c) => c.toLowerCase() === me.toLowerCase());
  if (position < 0 || n === 0) return undefined;
  const offset = (position - (index % n) + n) % n;
  return { mine: offset === 0, eligibleAt: slotSec + offset * failoverAfterSec };
}
