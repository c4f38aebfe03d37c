/**
 * The host's log: JSON lines on disk written by pino, and an optional listener
 * for live progress. The host only ever holds ciphertext, digests, CIDs and
 * ids, so nothing it logs is secret; still, it logs metadata, never blob contents.
 */
import { pino } from "pino";
import { CloisterError } from "../util/base-error.ts";

export type HostEvent =
  | { type: "enclave-ready"; signer: string; measurement: string; simulated: boolean; teeType: string }
  | { type: "enclave-registered"; signer: string; evidenceCid: string; expiry: string; transactionHash: string }
  | { type: "offer-posted"; signer: string; token: string; price: string; transactionHash: string }
  /** The enclave's registration changed state (attestation-lifecycle.ts); expiry in chain time (Unix seconds). */
  | { type: "registration-changed"; signer: string; from: string; state: string; expiry: string | null; error?: string }
  /** The node withdrew an offer its enclave can no longer honour (registration expired or revoked). */
  | { type: "offer-withdrawn"; signer: string; token: string; transactionHash: string }
  | { type: "task-seen"; taskId: string }
  | { type: "task-skipped"; taskId: string; reason: string }
  /** gasUsed is the whole transaction's, shared by batchSize tasks. */
  | { type: "task-accepted"; taskId: string; transactionHash: string; gasUsed: string; batchSize: number }
  /** No outcome or timing: the enclave tells the host neither (docs/threat-model.md, "What the public record reveals"). */
  | { type: "task-executed"; taskId: string; outputCid: string; provenanceCid: string }
  | { type: "task-completed"; taskId: string; transactionHash: string; gasUsed: string; batchSize: number }
  /** `details`: a typed error's (CloisterError: safe to publish), when it has any. */
  | { type: "task-failed"; taskId: string; code: string; message: string; details?: Readonly<Record<string, unknown>> }
  /** The enclave proved the task's inputs unrunnable (`code`, `message`: its failure); its refusal ended the attempt. */
  | { type: "task-refused"; taskId: string; reason: string; code: string; message: string; transactionHash: string; gasUsed: string }
  /** This node's reopen keeper reopened an attempt another enclave missed, or refunded the requester after the last one. */
  | { type: "task-reopened"; taskId: string; attempt: number; outcome: "reopened" | "refunded"; missedEnclave: string; transactionHash: string; gasUsed: string }
  /** This node's scheduler started a pipeline run (its turn, or a failover after the deadline); `request`: the owner's request it serves (then `slot` is the request's block time). */
  | { type: "pipeline-started"; pipelineId: string; slot: number; failover: boolean; request?: number }
  /** A pipeline run this node ran is anchored. */
  | { type: "pipeline-anchored"; pipelineId: string; run: number; runId: string; read: number; written: number; resumed: boolean; transactionHash: string; gasUsed: string }
  /** A pipeline run failed on this node (retried on the next poll while its slot is open). */
  | { type: "pipeline-failed"; pipelineId: string; code: string; message: string }
  /** A step of this node's side (party `party`) of a clean-room run requested on chain (collab-driver.ts). */
  | { type: "collab-run"; collaborationId: string; runId: number; party: number; step: "started" | "joined" | "computed" | "recorded" | "sent" | "result-stored" | "skipped" | "refusal-reported"; detail?: string; transactionHash?: string }
  /** This node's side of a clean-room run failed: an enclave's refusal (its typed reason) or a host step. */
  | { type: "collab-run-failed"; collaborationId: string; runId: number; party: number; code: string; message: string }
  /** A crawler could not read the market (it backs off and reads the same range again), or the keeper could not reopen a task. */
  | { type: "watcher-error"; source: "chain-follower" | "reopen-keeper" | "registration"; code: string; message: string; taskId?: string; details?: Readonly<Record<string, unknown>> };

/** Every host event type (a Record, so the compiler insists it lists each one). */
const hostEventTypeSet: Record<HostEvent["type"], true> = {
  "enclave-ready": true,
  "enclave-registered": true,
  "offer-posted": true,
  "registration-changed": true,
  "offer-withdrawn": true,
  "task-seen": true,
  "task-skipped": true,
  "task-accepted": true,
  "task-executed": true,
  "task-completed": true,
  "task-failed": true,
  "task-refused": true,
  "task-reopened": true,
  "watcher-error": true,
  "pipeline-started": true,
  "pipeline-anchored": true,
  "pipeline-failed": true,
  "collab-run": true,
  "collab-run-failed": true,
};

export function isHostEventType(name: string): name is HostEvent["type"] {
  return Object.hasOwn(hostEventTypeSet, name);
}

export const hostEventTypes = Object.keys(hostEventTypeSet) as HostEvent["type"][];

/** A failure event's `details`: a typed error's own, when it has any (CloisterError's details are safe to publish). */
export function errorDetails(error: unknown): { details?: Readonly<Record<string, unknown>> } {
  return error instanceof CloisterError && error.details !== undefined ? { details: error.details } : {};
}

export interface HostLog {
  emit(event: HostEvent): void;
}

export interface FileHostLog extends HostLog {
  /** Closes the file; events emitted afterwards (a task finishing during shutdown) still reach the listener, not the file. */
  close(): void;
}

/**
 * One line per event, `{"level": "info", "time": ISO 8601, ...event}`, written
 * synchronously: an event is in the file before the step that follows it, so a
 * node that crashes leaves a log that ends where it stopped. `level` is kept,
 * as a label, because pino opens every line with it and log shippers filter on
 * it; `pid` and `hostname` are left out: the file is already one node's on one
 * machine, and neither is an event's data.
 */
export function fileHostLog(path: string, listener?: (event: HostEvent) => void): FileHostLog {
  const destination = pino.destination({ dest: path, sync: true, mkdir: true });
  const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, destination);
  let open = true;
  return {
    emit(event) {
      if (open) logger.info(event);
      listener?.(event);
    },
    close() {
      if (!open) return;
      open = false;
      destination.destroy();
    },
  };
}
