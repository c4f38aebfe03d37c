/**
 * The node's Prometheus metrics, kept and rendered by prom-client in a
 * registry of the node's own (not prom-client's global one: a test or devnet
 * runs several nodes in one process). Task metrics are derived from the host
 * log's events (meteredLog), so every place that logs a transition is also
 * counted; the crawler and the enclave feed the rest.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registrationStates, type RegistrationState } from "./attestation-lifecycle.ts";
import type { HostEvent, HostLog } from "./log.ts";

/** Seconds from a task being seen to its completion: sub-second on a devnet, minutes for real programs. */
const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly tasksSeen = new Counter({ name: "tasks_seen_total", help: "Tasks this node saw submitted on the market.", registers: [this.registry] });
  readonly tasksAccepted = new Counter({ name: "tasks_accepted_total", help: "Tasks this node accepted on chain.", registers: [this.registry] });
  readonly tasksCompleted = new Counter({ name: "tasks_completed_total", help: "Tasks this node completed on chain.", registers: [this.registry] });
  readonly tasksFailed = new Counter({ name: "tasks_failed_total", help: "Tasks this node could not accept or complete, by error code.", labelNames: ["code"] as const, registers: [this.registry] });
  readonly taskDuration = new Histogram({ name: "task_duration_seconds", help: "Time from a task being seen to its completion on chain.", buckets: durationBuckets, registers: [this.registry] });
  readonly tasksInFlight = new Gauge({ name: "tasks_in_flight", help: "Tasks seen and not yet completed, failed or skipped.", registers: [this.registry] });
  readonly checkpointBlock = new Gauge({ name: "chain_block_checkpoint", help: "Last block whose market events this node has fully handled.", registers: [this.registry] });
  readonly rpcErrors = new Counter({ name: "rpc_errors_total", help: "Chain RPC and IPFS requests that failed transiently (and were retried).", registers: [this.registry] });
  readonly enclaveUp = new Gauge({ name: "enclave_up", help: "1 while the enclave process is running, 0 once it has exited.", registers: [this.registry] });
  /** A state set: one series per state, 1 for the current state and 0 for the others. */
  readonly #registrationState = new Gauge({ name: "registration_state", help: "The enclave's registration: 1 for its current state, 0 for the others.", labelNames: ["state"] as const, registers: [this.registry] });
  readonly registrationExpirySeconds = new Gauge({
    name: "registration_expiry_seconds",
    help: "Seconds of chain time until the enclave's registration expires (0 or less once expired; 0 before the first).",
    registers: [this.registry],
  });

  /** When each task in flight was first seen (ms since epoch). */
  readonly #inFlight = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.setRegistrationState(registrationStates[0]!);
  }

  setRegistrationState(current: RegistrationState): void {
    for (const state of registrationStates) this.#registrationState.set({ state }, state === current ? 1 : 0);
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

  /** The exposition text (format 0.0.4) of this node's metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
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
