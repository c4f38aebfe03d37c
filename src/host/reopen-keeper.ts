/**
 * The reopen keeper, so a requester may go offline once it has submitted: it
 * follows the market's task events for the tasks this node's enclave could
 * run (it is a candidate, or the task is open to any enclave), and when an
 * attempt is past its deadline without a completion, it sends reopenTask
 * (anyone may). That includes its own enclave's missed attempts: past the
 * deadline they can no longer be completed and the deposit is forfeit
 * whoever reopens, so reopening them at once gives the task its next attempt
 * (or the requester its refund) without the requester having to act. The missed operator's deposit
 * goes to the requester and the task is open again, so every candidate's task
 * watcher sees TaskReopened and tries to accept it; after the last attempt the
 * same call refunds the requester.
 *
 * What it knows (the tasks it follows and the last block it read) is saved
 * after each read, so a restarted node still reopens the tasks it saw before.
 * Several keepers racing for one attempt is harmless: the market takes one
 * reopen per attempt, and the others' simulations revert before they send.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { getAbiItem, type Address } from "viem";
import { getBlock, getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { reopenTask } from "../chain/actions/reopen-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import type { Assignment, TaskSpec } from "../protocol/task.ts";
import type { HostLog } from "./log.ts";
import { backoffDelay, isTransientError } from "./retry.ts";

export interface ReopenKeeperOptions {
  /** Reads the market and sends the reopens (from this node's operator account). */
  writer: WriterClient;
  market: Address;
  /** This node's enclave: the tasks it may run are followed (its own missed attempts included). */
  enclave: Address;
  /** The keeper's saved view (JSON). */
  statePath: string;
  /** The first block to read on a first start (the market's deploy block). */
  fromBlock: bigint;
  pollIntervalMs: number;
  log: HostLog;
  /** The operator's serial send lane, shared with the task handlers (one account, one nonce sequence). */
  sendSerially: <T>(send: () => Promise<T>) => Promise<T>;
  /** A read of the chain failed; the keeper backs off and reads the same range again. */
  onError: (error: unknown) => void;
  /** Longest wait between reads while they fail (default 5000 ms). */
  maxBackoffMs?: number;
  /** Wall clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

export class ReopenKeeperStateError extends Error {
  readonly code = "REOPEN_KEEPER_STATE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReopenKeeperStateError";
  }
}

interface AcceptedAttempt {
  assignment: Assignment;
  attempt: number;
  /** Unix seconds. */
  deadline: bigint;
}

interface FollowedTask {
  spec: TaskSpec;
  accepted?: AcceptedAttempt;
}

/** Reverts saying this attempt is no longer the task's current one: someone else reopened or completed it. */
const staleAttempt = new Set(["TaskNotAccepted", "SpecMismatch"]);

export function startReopenKeeper(options: ReopenKeeperOptions): { stop(): Promise<void> } {
  const view = loadView(options.statePath, options.fromBlock - 1n);
  /** Attempts this keeper already saw settled by someone else, by task id: not tried again. */
  const stale = new Map<bigint, number>();
  let stopped = false;
  let wake: (() => void) | undefined;

  const loop = (async () => {
    let failures = 0;
    while (!stopped) {
      try {
        const chainNow = await readChain(options, view);
        await reopenOverdue(options, view, stale, chainNow);
        failures = 0;
      } catch (error) {
        failures++;
        options.onError(error);
      }
      if (stopped) break;
      const delay = failures === 0 ? options.pollIntervalMs : Math.max(options.pollIntervalMs, backoffDelay(failures, options.pollIntervalMs, options.maxBackoffMs ?? 5_000));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

interface View {
  block: bigint;
  tasks: Map<bigint, FollowedTask>;
}

/** The task lifecycle events the keeper follows, asked for by topic (offers and payments are not its business). */
const followedEvents = [
  getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskReopened" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskAccepted" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskCompleted" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskCancelled" }),
  getAbiItem({ abi: taskMarketAbi, name: "TaskRefunded" }),
];

/** Applies the market events since the last read, saves the view, and returns the chain's latest block time. */
async function readChain(o: ReopenKeeperOptions, view: View): Promise<bigint> {
  const latest = await getBlock(o.writer, { blockTag: "latest" });
  if (latest.number > view.block) {
    // getLogs decodes each log against the events asked for (strict: a log that does not decode is dropped).
    const events = await getLogs(o.writer, { address: o.market, events: followedEvents, fromBlock: view.block + 1n, toBlock: latest.number, strict: true });
    const self = o.enclave.toLowerCase();
    for (const event of events) {
      const { taskId } = event.args;
      switch (event.eventName) {
        case "TaskSubmitted":
        case "TaskReopened": {
          const spec = { ...event.args.spec, candidates: [...event.args.spec.candidates] };
          const mayRun = spec.candidates.length === 0 || spec.candidates.some((c) => c.toLowerCase() === self);
          if (mayRun) view.tasks.set(taskId, { spec });
          break;
        }
        case "TaskAccepted": {
          const task = view.tasks.get(taskId);
          if (!task) break;
          const { enclave, operator, price, deposit, attempt, deadline } = event.args;
          task.accepted = { assignment: { enclave, operator, price, deposit }, attempt, deadline: BigInt(deadline) };
          break;
        }
        default:
          view.tasks.delete(taskId);
      }
    }
    view.block = latest.number;
    saveView(o.statePath, view);
  }
  return latest.timestamp;
}

/** Sends reopenTask for each followed attempt that is past its deadline. */
async function reopenOverdue(o: ReopenKeeperOptions, view: View, stale: Map<bigint, number>, chainNow: bigint): Promise<void> {
  // A block is stamped no earlier than the wall clock, and the chain's clock may run ahead of it (a test's time travel).
  const wallNow = BigInt(Math.floor((o.now ?? Date.now)() / 1000));
  const now = chainNow > wallNow ? chainNow : wallNow;
  for (const [taskId, task] of view.tasks) {
    const a = task.accepted;
    if (!a || a.deadline >= now || stale.get(taskId) === a.attempt) continue;
    try {
      const sent = await o.sendSerially(() => reopenTask(o.writer, o.market, { taskId, spec: task.spec, assignment: a.assignment }));
      o.log.emit({
        type: "task-reopened",
        taskId: taskId.toString(),
        attempt: a.attempt,
        outcome: sent.outcome,
        missedEnclave: a.assignment.enclave,
        transactionHash: sent.hash,
        gasUsed: sent.gasUsed.toString(),
      });
      // Its event arrives with the next read; until then the attempt is settled.
      stale.set(taskId, a.attempt);
    } catch (error) {
      const revert = decodeContractRevert(error);
      if (revert && staleAttempt.has(revert.errorName)) {
        stale.set(taskId, a.attempt);
        continue;
      }
      // The chain's next block is not yet past the deadline: try again on the next round.
      if (revert?.errorName === "DeadlineNotReached") continue;
      if (!revert && isTransientError(error)) throw error;
      const e = error as Error & { code?: string };
      o.log.emit({ type: "watcher-error", source: "reopen-keeper", taskId: taskId.toString(), code: e.code ?? "INTERNAL", message: e.message });
      stale.set(taskId, a.attempt);
    }
  }
  for (const [taskId, attempt] of stale) {
    if (view.tasks.get(taskId)?.accepted?.attempt !== attempt) stale.delete(taskId);
  }
}

/**
 * reopenTask, simulated and gas-estimated against the pending block, the one the transaction will be mined
 * in. Against the latest block, as usual, a chain that mines only on demand (a devnet) would never show a
 * deadline passing while no other transaction comes: its latest block keeps the time it was mined at.
 */
// ---------------------------------------------------------------- the saved view

interface SavedTask {
  taskId: string;
  spec: Omit<TaskSpec, "maxPrice"> & { maxPrice: string };
  accepted?: { enclave: Address; operator: Address; price: string; deposit: string; attempt: number; deadline: string };
}

function saveView(path: string, view: View): void {
  const tasks: SavedTask[] = [...view.tasks].map(([taskId, t]) => ({
    taskId: taskId.toString(),
    spec: { ...t.spec, maxPrice: t.spec.maxPrice.toString() },
    ...(t.accepted
      ? {
          accepted: {
            ...t.accepted.assignment,
            price: t.accepted.assignment.price.toString(),
            deposit: t.accepted.assignment.deposit.toString(),
            attempt: t.accepted.attempt,
            deadline: t.accepted.deadline.toString(),
          },
        }
      : {}),
  }));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ block: view.block.toString(), tasks }));
  renameSync(tmp, path);
}

function loadView(path: string, initialBlock: bigint): View {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { block: initialBlock, tasks: new Map() };
    throw error;
  }
  try {
    const saved = JSON.parse(text) as { block: string; tasks: SavedTask[] };
    const tasks = new Map<bigint, FollowedTask>();
    for (const t of saved.tasks) {
      const spec: TaskSpec = { ...t.spec, maxPrice: BigInt(t.spec.maxPrice) };
      const a = t.accepted;
      tasks.set(BigInt(t.taskId), {
        spec,
        ...(a
          ? { accepted: { assignment: { enclave: a.enclave, operator: a.operator, price: BigInt(a.price), deposit: BigInt(a.deposit) }, attempt: a.attempt, deadline: BigInt(a.deadline) } }
          : {}),
      });
    }
    return { block: BigInt(saved.block), tasks };
  } catch (error) {
    throw new ReopenKeeperStateError(`the reopen keeper's state ${path} is unreadable: ${(error as Error).message}; delete it to rebuild it from the deployment block`, { cause: error });
  }
}
