/**
 * The host's log: JSON lines on disk, and an optional listener for live
 * progress. The host only ever holds ciphertext, digests, CIDs and ids, so
 * nothing it logs is secret; still, it logs metadata, never blob contents.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type HostEvent =
  | { type: "enclave-ready"; signer: string; measurement: string; simulated: boolean; teeType: string }
  | { type: "enclave-registered"; signer: string; evidenceCid: string; expiry: string; transactionHash: string }
  | { type: "offer-posted"; signer: string; token: string; price: string; transactionHash: string }
  | { type: "task-seen"; taskId: string }
  | { type: "task-skipped"; taskId: string; reason: string }
  | { type: "task-accepted"; taskId: string; transactionHash: string; gasUsed: string }
  | { type: "task-executed"; taskId: string; outcome: string; outputCid: string; provenanceCid: string }
  | { type: "task-completed"; taskId: string; transactionHash: string; gasUsed: string }
  | { type: "task-failed"; taskId: string; code: string; message: string };

export interface HostLog {
  emit(event: HostEvent): void;
}

export function fileHostLog(path: string, listener?: (event: HostEvent) => void): HostLog {
  mkdirSync(dirname(path), { recursive: true });
  return {
    emit(event) {
      appendFileSync(path, `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
      listener?.(event);
    },
  };
}
