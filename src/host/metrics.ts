/**
 * The node's Prometheus metrics, rendered in the text exposition format
 * (version 0.0.4) without a client library. Task metrics are derived from the
 * host log's events (meteredLog), so every place that logs a transition is
 * also counted; the crawler and the enclave feed the rest.
 */
import { registrationStates, type RegistrationState } from "./attestation-lifecycle.ts";
import type { HostEvent, HostLog } from "./log.ts";

type Labels = Record<string, string>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

interface Metric {
  render(): string[];
}

function header(name: string, help: string, type: string): string[] {
  return [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
}

export class Counter implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #labelled: boolean;
  readonly #values = new Map<string, number>();

  /** A `labelled` counter has only labelled series, so it shows no line before its first increment. */
  constructor(name: string, help: string, options: { labelled?: boolean } = {}) {
    this.#name = name;
    this.#help = help;
    this.#labelled = options.labelled ?? false;
  }

  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`counter ${this.#name} can only increase; use a gauge for values that go down`);
    const key = formatLabels(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  value(labels: Labels = {}): number {
    return this.#values.get(formatLabels(labels)) ?? 0;
  }

  render(): string[] {
    // An unlabelled counter shows 0 before its first increment, so a scraper sees that it exists.
    const series = this.#values.size === 0 && !this.#labelled ? new Map([["", 0]]) : this.#values;
    return [...header(this.#name, this.#help, "counter"), ...[...series].map(([key, v]) => `${this.#name}${key} ${formatValue(v)}`)];
  }
}

export class Gauge implements Metric {
  readonly #name: string;
  readonly #help: string;
  #value = 0;

  constructor(name: string, help: string) {
    this.#name = name;
    this.#help = help;
  }

  set(value: number): void {
    this.#value = value;
  }

  get value(): number {
    return this.#value;
  }

  render(): string[] {
    return [...header(this.#name, this.#help, "gauge"), `${this.#name} ${formatValue(this.#value)}`];
  }
}

/** A state set: one series per state, labelled with it, 1 for the current state and 0 for the others. */
export class StateGauge<S extends string> implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #label: string;
  readonly #states: readonly S[];
  #current: S;

  constructor(name: string, help: string, label: string, states: readonly S[]) {
    this.#name = name;
    this.#help = help;
    this.#label = label;
    this.#states = states;
    this.#current = states[0]!;
  }

  set(state: S): void {
    this.#current = state;
  }

  get current(): S {
    return this.#current;
  }

  render(): string[] {
    return [...header(this.#name, this.#help, "gauge"), ...this.#states.map((s) => `${this.#name}${formatLabels({ [this.#label]: s })} ${s === this.#current ? 1 : 0}`)];
  }
}

export class Histogram implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, bounds: number[]) {
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) throw new RangeError(`histogram ${name}: bucket bounds must increase`);
    this.#name = name;
    this.#help = help;
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#bounds.forEach((bound, i) => {
      if (value <= bound) this.#counts[i]!++;
    });
    this.#sum += value;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  render(): string[] {
    return [
      ...header(this.#name, this.#help, "histogram"),
      ...this.#bounds.map((bound, i) => `${this.#name}_bucket{le="${formatValue(bound)}"} ${this.#counts[i]}`),
      `${this.#name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.#name}_sum ${formatValue(this.#sum)}`,
      `${this.#name}_count ${this.#count}`,
    ];
  }
}

/** Seconds from a task being seen to its completion: sub-second on a devnet, minutes for real programs. */
const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

export class NodeMetrics {
  readonly tasksSeen = new Counter("tasks_seen_total", "Tasks this node saw submitted on the market.");
  readonly tasksAccepted = new Counter("tasks_accepted_total", "Tasks this node accepted on chain.");
  readonly tasksCompleted = new Counter("tasks_completed_total", "Tasks this node completed on chain.");
  readonly tasksFailed = new Counter("tasks_failed_total", "Tasks this node could not accept or complete, by error code.", { labelled: true });
  readonly taskDuration = new Histogram("task_duration_seconds", "Time from a task being seen to its completion on chain.", durationBuckets);
  readonly tasksInFlight = new Gauge("tasks_in_flight", "Tasks seen and not yet completed, failed or skipped.");
  readonly checkpointBlock = new Gauge("chain_block_checkpoint", "Last block whose market events this node has fully handled.");
  readonly rpcErrors = new Counter("rpc_errors_total", "Chain RPC and IPFS requests that failed transiently (and were retried).");
  readonly enclaveUp = new Gauge("enclave_up", "1 while the enclave process is running, 0 once it has exited.");
  readonly registrationState = new StateGauge<RegistrationState>("registration_state", "The enclave's registration: 1 for its current state, 0 for the others.", "state", registrationStates);
  readonly registrationExpirySeconds = new Gauge("registration_expiry_seconds", "Seconds of chain time until the enclave's registration expires (0 or less once expired; 0 before the first).");

  /** When each task in flight was first seen (ms since epoch). */
  readonly #inFlight = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  observe(event: HostEvent): void {
    switch (event.type) {
      case "enclave-ready":
        this.enclaveUp.set(1);
        break;
      case "task-seen":
        // A block range retried after an outage shows its tasks again: count each once.
        if (this.#inFlight.has(event.taskId)) break;
        this.#inFlight.set(event.taskId, this.#now());
        this.tasksSeen.inc();
        break;
      case "task-accepted":
        this.tasksAccepted.inc();
        break;
      case "task-completed": {
        this.tasksCompleted.inc();
        const seenAt = this.#inFlight.get(event.taskId);
        if (seenAt !== undefined) this.taskDuration.observe((this.#now() - seenAt) / 1000);
        this.#inFlight.delete(event.taskId);
        break;
      }
      case "task-failed":
      case "task-refused":
        // The daemon logs crawler errors with task id "-": those are not task failures. A refused task failed with
        // its enclave's code, and its attempt is over.
        if (event.taskId === "-") break;
        this.tasksFailed.inc({ code: event.code });
        this.#inFlight.delete(event.taskId);
        break;
      case "task-skipped":
        this.#inFlight.delete(event.taskId);
        break;
      default:
        break;
    }
    this.tasksInFlight.set(this.#inFlight.size);
  }

  render(): string {
    const metrics: Metric[] = [
      this.tasksSeen,
      this.tasksAccepted,
      this.tasksCompleted,
      this.tasksFailed,
      this.taskDuration,
      this.tasksInFlight,
      this.checkpointBlock,
      this.rpcErrors,
      this.enclaveUp,
      this.registrationState,
      this.registrationExpirySeconds,
    ];
    return `${metrics.flatMap((m) => m.render()).join("\n")}\n`;
  }
}

/** A HostLog that also feeds every event it emits to the metrics. */
export function meteredLog(log: HostLog, metrics: NodeMetrics): HostLog {
  return {
    emit(event) {
      metrics.observe(event);
      log.emit(event);
    },
  };
}
