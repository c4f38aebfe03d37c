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
 * It is a subscriber of the node's chain follower (chain/follower.ts), read
 * once per pollIntervalMs rather than on every block: what it knows (the
 * attempts under way) is saved in the follower's checkpoint with its
 * position, so a restarted node still reopens the attempts it saw before,
 * and reads the market's events from that position on. After each read it
 * reopens the attempts past their deadline. Several keepers racing for one attempt is harmless:
 * the market takes one reopen per attempt, and the others' simulations revert
 * before they send.
 */
import { decodeEventLog, getAbiItem, hexToBigInt, toEventSelector, type Address } from "viem";
import { getBlock, getLogs } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { reopenTask } from "../chain/actions/reopen-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import type { ChainFollower, FollowedLog } from "../chain/follower.ts";
import type { Assignment, TaskSpec } from "../protocol/task.ts";
import { backoffDelay } from "../util/backoff.ts";
import { CloisterError } from "../util/base-error.ts";
import { errorDetails, type HostLog } from "./log.ts";
import { isTransientError } from "./retry.ts";

export interface ReopenKeeperOptions {
  /** Reads the market and sends the reopens (from this node's operator account). */
  writer: WriterClient;
  market: Address;
  /** This node's enclave: the tasks it may run are followed (its own missed attempts included). */
  enclave: Address;
  /** The node's chain follower: the keeper subscribes to it, and its view is saved in its checkpoint. */
  follower: ChainFollower;
  /** The first block to read on a first start (the market's deploy block). */
  fromBlock: bigint;
  /** How often the keeper reads the market and looks for attempts past their deadline. */
  pollIntervalMs: number;
  log: HostLog;
  /** The operator's serial send lane, shared with the task handlers (one account, one nonce sequence). */
  sendSerially: <T>(send: () => Promise<T>) => Promise<T>;
  /** A round of reopens failed on the chain; the keeper backs off before the next. */
  onError: (error: unknown) => void;
  /** Longest wait between rounds while they fail (default 5000 ms). */
  maxBackoffMs?: number;
  /** Wall clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

export class ReopenKeeperStateError extends CloisterError<"REOPEN_KEEPER_STATE"> {}

/** Its position's id in the follower's checkpoint. */
export const reopenKeeperId = "reopens";

interface AcceptedAttempt {
  assignment: Assignment;
  attempt: number;
  /** Unix seconds. */
  deadline: bigint;
}

/** Reverts saying this attempt is no longer the task's current one: someone else reopened or completed it. */
const staleAttempt = new Set(["TaskNotAccepted", "SpecMismatch"]);

const acceptedEvent = getAbiItem({ abi: taskMarketAbi, name: "TaskAccepted" });
const acceptedSelector = toEventSelector(acceptedEvent);
/** Events that end the attempt under way: only their indexed task id is read. */
const endingEvents = (["TaskReopened", "TaskCompleted", "TaskCancelled", "TaskRefunded", "TaskRefused"] as const).map((name) => getAbiItem({ abi: taskMarketAbi, name }));
const submittedEvent = getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" });

export function startReopenKeeper(options: ReopenKeeperOptions): { stop(): Promise<void> } {
  /** The attempt under way of each accepted task, whichever enclave holds it. */
  const attempts = new Map<bigint, AcceptedAttempt>();
  /** Attempts this keeper already saw settled by someone else, by task id: not tried again. */
  const stale = new Map<bigint, number>();
  let round: Promise<void> | undefined;
  let failures = 0;
  let nextRoundAt = 0;
  let stopped = false;

  const startRound = () => {
    if (stopped || round || performance.now() < nextRoundAt) return;
    round = (async () => {
      try {
        const latest = await getBlock(options.writer, { blockTag: "latest" });
        await reopenOverdue(options, attempts, stale, latest.timestamp);
        failures = 0;
      } catch (error) {
        failures++;
        nextRoundAt = performance.now() + backoffDelay(failures, options.pollIntervalMs, options.maxBackoffMs ?? 5_000);
        options.onError(error);
      } finally {
        round = undefined;
      }
    })();
  };

  options.follower.subscribe({
    id: reopenKeeperId,
    address: options.market,
    events: [acceptedEvent, ...endingEvents],
    fromBlock: options.fromBlock,
    everyMs: options.pollIntervalMs,
    handle: (log) => applyEvent(attempts, log),
    onCrawled: startRound,
    state: { save: () => saveAttempts(attempts), restore: (saved) => restoreAttempts(attempts, saved) },
  });
  return {
    async stop() {
      stopped = true;
      await round;
    },
  };
}

/** Applies one market event to the attempts under way (synchronously: the view is saved with the follower's position). */
function applyEvent(attempts: Map<bigint, AcceptedAttempt>, log: FollowedLog): void {
  // Only TaskAccepted's data is decoded; the others end an attempt, and their task id is a topic.
  const taskTopic = log.topics[1];
  if (taskTopic === undefined) return;
  const taskId = hexToBigInt(taskTopic);
  if (log.topics[0] !== acceptedSelector) {
    attempts.delete(taskId);
    return;
  }
  const { enclave, operator, price, deposit, attempt, deadline } = decodeEventLog({ abi: [acceptedEvent], data: log.data, topics: log.topics, strict: true }).args;
  attempts.set(taskId, { assignment: { enclave, operator, price, deposit }, attempt, deadline: BigInt(deadline) });
}

/** The task's spec, from its TaskSubmitted event; undefined when the market has no such task. */
async function specOf(o: ReopenKeeperOptions, taskId: bigint): Promise<TaskSpec | undefined> {
  const [submitted] = await getLogs(o.writer, { address: o.market, event: submittedEvent, args: { taskId }, fromBlock: o.fromBlock, toBlock: "latest", strict: true });
  return submitted && { ...submitted.args.spec, candidates: [...submitted.args.spec.candidates] };
}

/** Sends reopenTask for each attempt past its deadline, of a task this enclave may run. */
async function reopenOverdue(o: ReopenKeeperOptions, attempts: Map<bigint, AcceptedAttempt>, stale: Map<bigint, number>, chainNow: bigint): Promise<void> {
  // A block is stamped no earlier than the wall clock, and the chain's clock may run ahead of it (a test's time travel).
  const wallNow = BigInt(Math.floor((o.now ?? Date.now)() / 1000));
  const now = chainNow > wallNow ? chainNow : wallNow;
  const self = o.enclave.toLowerCase();
  for (const [taskId, a] of attempts) {
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
    if (attempts.get(taskId)?.attempt !== attempt) stale.delete(taskId);
  }
}

// ---------------------------------------------------------------- the saved view

interface SavedAttempt {
  taskId: string;
  enclave: Address;
  operator: Address;
  price: string;
  deposit: string;
  attempt: number;
  deadline: string;
}

function saveAttempts(attempts: Map<bigint, AcceptedAttempt>): SavedAttempt[] {
  return [...attempts].map(([taskId, a]) => ({
    taskId: taskId.toString(),
    ...a.assignment,
    price: a.assignment.price.toString(),
    deposit: a.assignment.deposit.toString(),
    attempt: a.attempt,
    deadline: a.deadline.toString(),
  }));
}

/** The attempts as saved; a view migrated from the keeper's own file of earlier versions has the same shape. */
function restoreAttempts(attempts: Map<bigint, AcceptedAttempt>, saved: unknown): void {
  if (!Array.isArray(saved)) throw new ReopenKeeperStateError("REOPEN_KEEPER_STATE", "the reopen keeper's saved view lists no attempts; delete the chain follower's checkpoint to rebuild it from the deployment block");
  try {
    for (const a of saved as SavedAttempt[]) {
      attempts.set(BigInt(a.taskId), {
        assignment: { enclave: a.enclave, operator: a.operator, price: BigInt(a.price), deposit: BigInt(a.deposit) },
        attempt: a.attempt,
        deadline: BigInt(a.deadline),
      });
    }
  } catch (error) {
    throw new ReopenKeeperStateError("REOPEN_KEEPER_STATE", `the reopen keeper's saved view is unreadable (${(error as Error).message}); delete the chain follower's checkpoint to rebuild it from the deployment block`, { cause: error });
  }
}
