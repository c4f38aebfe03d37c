/**
 * The reopen keeper, so a requester may go offline once it has submitted:
 * when an attempt of a task this node's enclave could run (it is a candidate,
 * or the task is open to any enclave) is past its deadline without a
 * completion, it sends reopenTask (anyone may). That includes its own
 * enclave's missed attempts: past the deadline they can no longer be
 * completed and the deposit is forfeit whoever reopens, so reopening them at
 * once gives the task its next attempt (or the requester its refund) without
 * the requester having to act. The missed operator's deposit goes to the
 * requester and the task is open again, so every candidate's task watcher
 * sees TaskReopened and tries to accept it; after the last attempt the same
 * call refunds the requester.
 *
 * It follows the attempts under way from the market's small events
 * (TaskAccepted, and the ones that end an attempt), not from TaskSubmitted:
 * that event carries the whole spec, which the keeper needs only for the rare
 * attempt that expires. It reads that task's spec then (TaskSubmitted, by its
 * indexed task id) and checks that its enclave may run the task.
 *
 * What it knows (the attempts under way and the last block it read) is saved
 * at most once a second while it changes, and when the keeper stops, so a
 * restarted node still reopens the attempts it saw before. A view saved a
 * moment before a crash is still whole: the restarted keeper reads the
 * market's events from its block on again. Several keepers racing for one attempt is harmless:
 * the market takes one reopen per attempt, and the others' simulations revert
 * before they send.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { decodeEventLog, getAbiItem, hexToBigInt, toEventSelector, toHex, type Address, type EIP1193RequestFn, type Hex, type PublicRpcSchema } from "viem";
import { getBlock, getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { reopenTask } from "../chain/actions/reopen-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import type { Assignment, TaskSpec } from "../protocol/task.ts";
import { assertNotAheadOfChain } from "./chain-position.ts";
import { errorDetails, type HostLog } from "./log.ts";
import { backoffDelay, isTransientError } from "./retry.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

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

export class ReopenKeeperStateError extends CloisterError<"REOPEN_KEEPER_STATE"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("REOPEN_KEEPER_STATE", message, options);
  }
}

interface AcceptedAttempt {
  assignment: Assignment;
  attempt: number;
  /** Unix seconds. */
  deadline: bigint;
}


/** Under load every block changes the view, and writing it out each time cost a node more than reading the events. */
const VIEW_SAVE_INTERVAL_MS = 1_000;

/** Reverts saying this attempt is no longer the task's current one: someone else reopened or completed it. */
const staleAttempt = new Set(["TaskNotAccepted", "SpecMismatch"]);

export function startReopenKeeper(options: ReopenKeeperOptions): { stop(): Promise<void> } {
  const view = loadView(options.statePath, options.fromBlock - 1n);
  /** Attempts this keeper already saw settled by someone else, by task id: not tried again. */
  const stale = new Map<bigint, number>();
  let stopped = false;
  let wake: (() => void) | undefined;

  let savedBlock = view.block;
  let savedAt = 0;
  const save = () => {
    saveView(options.statePath, view);
    savedBlock = view.block;
    savedAt = performance.now();
  };

  const loop = (async () => {
    let failures = 0;
    while (!stopped) {
      try {
        const chainNow = await readChain(options, view);
        if (view.block !== savedBlock && performance.now() - savedAt >= VIEW_SAVE_INTERVAL_MS) save();
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
    try {
      if (view.block !== savedBlock) save();
    } catch (error) {
      options.onError(error);
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
  /** The attempt under way of each accepted task, whichever enclave holds it. */
  attempts: Map<bigint, AcceptedAttempt>;
}

const acceptedEvent = getAbiItem({ abi: taskMarketAbi, name: "TaskAccepted" });
const acceptedTopic = toEventSelector(acceptedEvent);
/** Events that end the attempt under way: only their indexed task id is read. */
const endingTopics = (["TaskReopened", "TaskCompleted", "TaskCancelled", "TaskRefunded", "TaskRefused"] as const).map((name) => toEventSelector(getAbiItem({ abi: taskMarketAbi, name })));
const submittedEvent = getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" });

/** Applies the market events since the last read to the view, and returns the chain's latest block time. */
async function readChain(o: ReopenKeeperOptions, view: View): Promise<bigint> {
  const latest = await getBlock(o.writer, { blockTag: "latest" });
  assertNotAheadOfChain({ what: "the reopen keeper's view", path: o.statePath, block: view.block }, latest.number, "running");
  if (latest.number > view.block) {
    // Raw logs: only TaskAccepted's data is decoded; the others end an attempt, and their task id is a topic.
    const request = o.writer.request as unknown as EIP1193RequestFn<PublicRpcSchema>;
    const logs = await request({
      method: "eth_getLogs",
      params: [{ address: o.market, topics: [[acceptedTopic, ...endingTopics]], fromBlock: toHex(view.block + 1n), toBlock: toHex(latest.number) }],
    });
    for (const log of logs) {
      const [topic, taskTopic] = log.topics;
      if (taskTopic === undefined) continue;
      const taskId = hexToBigInt(taskTopic);
      if (topic !== acceptedTopic) {
        view.attempts.delete(taskId);
        continue;
      }
      const { enclave, operator, price, deposit, attempt, deadline } = decodeEventLog({ abi: [acceptedEvent], data: log.data, topics: log.topics as [Hex, ...Hex[]], strict: true }).args;
      view.attempts.set(taskId, { assignment: { enclave, operator, price, deposit }, attempt, deadline: BigInt(deadline) });
    }
    view.block = latest.number;
  }
  return latest.timestamp;
}

/** The task's spec, from its TaskSubmitted event; undefined when the market has no such task. */
async function specOf(o: ReopenKeeperOptions, taskId: bigint): Promise<TaskSpec | undefined> {
  const [submitted] = await getLogs(o.writer, { address: o.market, event: submittedEvent, args: { taskId }, fromBlock: o.fromBlock, toBlock: "latest", strict: true });
  return submitted && { ...submitted.args.spec, candidates: [...submitted.args.spec.candidates] };
}

/** Sends reopenTask for each attempt past its deadline, of a task this enclave may run. */
async function reopenOverdue(o: ReopenKeeperOptions, view: View, stale: Map<bigint, number>, chainNow: bigint): Promise<void> {
  // A block is stamped no earlier than the wall clock, and the chain's clock may run ahead of it (a test's time travel).
  const wallNow = BigInt(Math.floor((o.now ?? Date.now)() / 1000));
  const now = chainNow > wallNow ? chainNow : wallNow;
  const self = o.enclave.toLowerCase();
  for (const [taskId, a] of view.attempts) {
    if (a.deadline >= now || stale.get(taskId) === a.attempt) continue;
    const spec = await specOf(o, taskId);
    const mayRun = spec !== undefined && (spec.candidates.length === 0 || spec.candidates.some((c) => c.toLowerCase() === self));
    if (!mayRun) {
      stale.set(taskId, a.attempt);
      continue;
    }
    try {
      const sent = await o.sendSerially(() => reopenTask(o.writer, o.market, { taskId, spec, assignment: a.assignment }));
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
      o.log.emit({ type: "watcher-error", source: "reopen-keeper", taskId: taskId.toString(), code: e.code ?? "INTERNAL", message: e.message, ...errorDetails(e) });
      stale.set(taskId, a.attempt);
    }
  }
  for (const [taskId, attempt] of stale) {
    if (view.attempts.get(taskId)?.attempt !== attempt) stale.delete(taskId);
  }
}

// ---------------------------------------------------------------- the saved view

/** The last block the keeper's saved view at `path` has read (`initialBlock` when there is none yet). */
export function savedViewBlock(path: string, initialBlock: bigint): bigint {
  return loadView(path, initialBlock).block;
}

interface SavedAttempt {
  taskId: string;
  enclave: Address;
  operator: Address;
  price: string;
  deposit: string;
  attempt: number;
  deadline: string;
}

function saveView(path: string, view: View): void {
  const attempts: SavedAttempt[] = [...view.attempts].map(([taskId, a]) => ({
    taskId: taskId.toString(),
    ...a.assignment,
    price: a.assignment.price.toString(),
    deposit: a.assignment.deposit.toString(),
    attempt: a.attempt,
    deadline: a.deadline.toString(),
  }));
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: 2, block: view.block.toString(), attempts }));
  renameSync(tmp, path);
}

/**
 * The saved view; a view saved by an earlier version (tasks with their specs, no version) is read again
 * from the deployment block, since it knows no attempts beyond those of the tasks it followed.
 */
function loadView(path: string, initialBlock: bigint): View {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { block: initialBlock, attempts: new Map() };
    throw error;
  }
  try {
    const saved = JSON.parse(text) as { version?: number; block: string; attempts?: SavedAttempt[] };
    if (saved.version !== 2) return { block: initialBlock, attempts: new Map() };
    if (!Array.isArray(saved.attempts)) throw new Error("it lists no attempts");
    const attempts = new Map<bigint, AcceptedAttempt>();
    for (const a of saved.attempts) {
      attempts.set(BigInt(a.taskId), {
        assignment: { enclave: a.enclave, operator: a.operator, price: BigInt(a.price), deposit: BigInt(a.deposit) },
        attempt: a.attempt,
        deadline: BigInt(a.deadline),
      });
    }
    return { block: BigInt(saved.block), attempts };
  } catch (error) {
    throw new ReopenKeeperStateError(`the reopen keeper's state ${path} is unreadable: ${(error as Error).message}; delete it to rebuild it from the deployment block`, { cause: error });
  }
}
