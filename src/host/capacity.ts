/**
 * How many tasks a node may run at once on this machine. A task's isolate may
 * use up to its memoryMb, and the market lets a task ask for as much as the
 * node's offer says, so `concurrency` tasks at the largest offered memoryMb
 * must fit in the machine's memory with room left for the node, the enclave
 * process and the OS (TASK_MEMORY_SHARE). When they do not, the node runs
 * fewer tasks at once and says why; an offer that no single task could be
 * given is refused at startup.
 */
import { totalmem } from "node:os";
import type { NodeOffer } from "./node-daemon.ts";
import { CloisterError } from "../util/base-error.ts";

/** Share of the machine's memory that running tasks may use together. */
export const TASK_MEMORY_SHARE = 0.75;

export class NodeCapacityError extends CloisterError<"NODE_CAPACITY"> {
  constructor(message: string) {
    super("NODE_CAPACITY", message);
  }
}

export interface RunCapacity {
  /** Tasks the node runs at once. */
  concurrency: number;
  /** Why the concurrency is lower than configured, when it is. */
  note?: string;
}

export function runCapacity(params: { offers: readonly NodeOffer[]; concurrency: number; machineMemoryMb?: number }): RunCapacity {
  const machineMb = params.machineMemoryMb ?? Math.floor(totalmem() / 2 ** 20);
  const budgetMb = Math.floor(machineMb * TASK_MEMORY_SHARE);
  const largest = params.offers.reduce((max, o) => Math.max(max, o.memoryMb), 0);
  if (largest > budgetMb) {
    throw new NodeCapacityError(
      `this node offers tasks ${largest} MB of memory, but the machine has ${machineMb} MB, ${budgetMb} MB of it for tasks: ` +
        `lower the offer's memoryMb to at most ${budgetMb}, or run the node on a larger machine`,
    );
  }
  const fits = largest === 0 ? params.concurrency : Math.floor(budgetMb / largest);
  if (params.concurrency <= fits) return { concurrency: params.concurrency };
  return {
    concurrency: fits,
    note:
      `${params.concurrency} tasks at once × ${largest} MB offered is ${params.concurrency * largest} MB, more than the ${budgetMb} MB ` +
      `this machine (${machineMb} MB) has for tasks: the node runs at most ${fits} task${fits === 1 ? "" : "s"} at once (lower the offer's memoryMb to run more)`,
  };
}
