/**
 * One task on one node: check what it can before it accepts (pre-accept.ts),
 * accept it on chain, relay its blobs from IPFS into the enclave (a job of
 * kind `task` on the job seam, task-job.ts), publish
 * what the enclave returns, and relay the enclave's signed completion to the
 * chain, or its signed refusal when the task's own inputs make it unrunnable
 * (task-refusal.ts). The host handles ciphertext only.
 */
import type { Address } from "viem";
import { keccak256 } from "../crypto/keccak.ts";
import { getContractEvents } from "viem/actions";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import { runTaskTimeoutMs, type EnclaveClient } from "../enclave/client.ts";
import { isEnclaveError } from "../enclave/errors.ts";
import { decodeInlineInput, taskCommitment, type Assignment } from "../protocol/task.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { errorDetails, type HostLog } from "./log.ts";
import { TaskTakenError, type NodeMarketBatches } from "./market-batches.ts";
import { checkBeforeAccept, type CheckedEnvelope } from "./pre-accept.ts";
import { withRetry, type RetryOptions } from "./retry.ts";
import { runTaskJob, type RunTaskParams, type TaskRun } from "./task-job.ts";
import { refuseIfUnrunnable } from "./task-refusal.ts";
import type { SubmittedTask } from "./task-watcher.ts";
import { CloisterError } from "../util/base-error.ts";

/**
 * Reverts of acceptTask that say this task is not for this node (taken, cancelled, expired, or its terms do
 * not match the node's offer): skipped, not failed. Anything else is the node's own problem.
 */
const notForThisNode = new Set([
  "TaskNotOpen",
  "DeadlinePassed",
  "NoOffer",
  "PriceAboveMax",
  "InsufficientResources",
  "TeeTypeNotAccepted",
  "EnclaveNotCandidate",
  "UnknownCategory",
]);

/** Blobs a node is willing to relay per task (program, input, envelope). */
const MAX_BLOB_BYTES = 64 * 1024 * 1024;

export interface TaskHandlerContext {
  writer: WriterClient;
  market: Address;
  chainId: bigint;
  /** Accepts, completions and status reads, batched across this node's tasks. */
  batches: NodeMarketBatches;
  store: BlobStore;
  /** Where programs are fetched from (default: store); programs repeat across tasks, so a node caches them. */
  programStore?: BlobStore;
  /** Bounds the tasks this node holds at once, from its accept to its completion (default: no bound). */
  admit?: <T>(job: () => Promise<T>) => Promise<T>;
  /** Bounds the fetch-and-run step (the enclave's work) among the tasks held (default: no bound). */
  runSlot?: <T>(job: () => Promise<T>) => Promise<T>;
  enclave: EnclaveClient;
  evidenceCid: string;
  log: HostLog;
  /** Wait per rank before a lower-ranked candidate tries to accept (default 200 ms; see acceptRank). */
  acceptSlotMs?: number;
  /** Backoff for chain and IPFS calls that fail transiently; its signal aborts them on shutdown. */
  retry?: Omit<RetryOptions, "what" | "isRetryable">;
  /**
   * What this node process knows of its own accepts: the latest block when it started, and how many accepts
   * it has sent for each task since (until its handler finishes). A task submitted after that block is this
   * enclave's only if this process took it: when it never tried, or its one attempt was skipped or refused,
   * the node does not ask the chain whose the task is. (After two attempts, the first may have been mined
   * although its reply was lost.)
   */
  ownAccepts?: { since: bigint; tried: Map<bigint, number> };
  /**
   * Why this node must not accept the task now (its registration is gone, or would end before the task's
   * deadline), or undefined when it may; asked just before each accept (default: always may).
   */
  refusalToAccept?: (task: SubmittedTask) => Promise<string | undefined>;
}

function retrying<T>(ctx: TaskHandlerContext, what: string, operation: () => Promise<T>): Promise<T> {
  return withRetry(operation, { ...ctx.retry, what });
}

/**
 * This enclave's assignment when the market shows the task's current attempt accepted by it
 * (before a restart, or by a send whose receipt was lost); undefined otherwise.
 */
async function ownAssignment(ctx: TaskHandlerContext, task: SubmittedTask): Promise<Assignment | undefined> {
  const known = ctx.ownAccepts;
  if (known && task.blockNumber > known.since && (known.tried.get(task.taskId) ?? 0) <= 1) return undefined;
  const record = await retrying(ctx, `readTask ${task.taskId}`, () => ctx.batches.readTask(task.taskId));
  if (record.status !== "Accepted") return undefined;
  const accepts = await retrying(ctx, `TaskAccepted logs of ${task.taskId}`, () =>
    getContractEvents(ctx.writer, {
      address: ctx.market,
      abi: taskMarketAbi,
      eventName: "TaskAccepted",
      args: { taskId: task.taskId, enclave: ctx.enclave.identity.signer },
      fromBlock: task.blockNumber,
      strict: true,
    }),
  );
  const mine = accepts.find((log) => log.args.attempt === record.attempt);
  if (!mine) return undefined;
  const { enclave, operator, price, deposit } = mine.args;
  const assignment = { enclave, operator, price, deposit };
  // The commitment binds spec and assignment: it matches only if this is the attempt on record.
  return taskCommitment(task.spec, assignment) === record.commitment ? assignment : undefined;
}

/** Default wait per rank (acceptRank) before a candidate other than the first tries to accept. */
export const defaultAcceptSlotMs = 200;

/**
 * This enclave's turn to accept among the task's candidates: 0 for the candidate with the lowest
 * keccak256(taskId, enclave), 1 for the next, and so on; 0 when the task names no candidates (open
 * matching: every node races). The order differs per task, so the work spreads over the candidates,
 * and a candidate that is down costs the others one slot.
 */
export function acceptRank(taskId: bigint, candidates: readonly Address[], enclave: Address): number {
  // abi.encode(uint256, address): the id in the first word, the address right-aligned in the second.
  const encoded = Buffer.alloc(64);
  encoded.write(taskId.toString(16).padStart(64, "0"), 0, 32, "hex");
  const score = (candidate: string) => {
    encoded.write(candidate.slice(2), 44, 20, "hex");
    return keccak256(encoded);
  };
  const own = score(enclave.toLowerCase());
  const distinct = new Set(candidates.map((c) => c.toLowerCase()));
  return [...distinct].filter((c) => score(c) < own).length;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * Waits for this enclave's turn among the task's candidates (acceptRank): "accept" when the task is still
 * open then; this enclave's assignment when it already holds the task (before a restart); undefined
 * (after logging why) when a candidate ranked before it took the task.
 */
async function awaitTurn(ctx: TaskHandlerContext, task: SubmittedTask): Promise<"accept" | Assignment | undefined> {
  const rank = acceptRank(task.taskId, task.spec.candidates, ctx.enclave.identity.signer);
  if (rank === 0) return "accept";
  await sleep(rank * (ctx.acceptSlotMs ?? defaultAcceptSlotMs), ctx.retry?.signal);
  const record = await retrying(ctx, `readTask ${task.taskId}`, () => ctx.batches.readTask(task.taskId));
  if (record.status === "Open") return "accept";
  const own = await ownAssignment(ctx, task);
  if (!own) ctx.log.emit({ type: "task-skipped", taskId: task.taskId.toString(), reason: `the task is ${record.status}: a candidate ranked before this one (rank ${rank}) took it` });
  return own;
}

/**
 * Accepts the task for this node's enclave, or resumes it when the enclave already holds it; undefined
 * (after logging why) when the task is not for this node. Throws only transient failures.
 */
async function acceptOrResume(ctx: TaskHandlerContext, task: SubmittedTask): Promise<Assignment | undefined> {
  const taskId = task.taskId.toString();
  const tried = ctx.ownAccepts?.tried;
  try {
    const accepted = await retrying(ctx, `acceptTask ${taskId}`, () => {
      tried?.set(task.taskId, (tried.get(task.taskId) ?? 0) + 1);
      return ctx.batches.accept({ taskId: task.taskId, spec: task.spec });
    });
    ctx.log.emit({ type: "task-accepted", taskId, transactionHash: accepted.hash, gasUsed: accepted.gasUsed.toString(), batchSize: accepted.batchSize });
    return accepted.assignment;
  } catch (error) {
    const revert = decodeContractRevert(error);
    let notOpen = revert?.errorName === "TaskNotOpen" || error instanceof TaskTakenError;
    // A lost race may also surface as the mined transaction reverting after its simulation passed, with a
    // reason that does not always decode: then the market's record says whether the task is still open.
    const reverted = revert !== undefined || (error as { code?: string }).code === "TRANSACTION_REVERTED";
    if (reverted && !notOpen && !(revert && notForThisNode.has(revert.errorName))) {
      const record = await retrying(ctx, `readTask ${taskId}`, () => ctx.batches.readTask(task.taskId));
      notOpen = record.status !== "Open";
    }
    // Not open any more because this very enclave holds it: resume the run instead of dropping it.
    const own = notOpen ? await ownAssignment(ctx, task) : undefined;
    if (!own) {
      // Another node got there first, the task was cancelled, or it asks for more than this node offers.
      if (notOpen || (revert && notForThisNode.has(revert.errorName))) {
        ctx.log.emit({ type: "task-skipped", taskId, reason: revert?.message ?? (error as Error).message });
        return undefined;
      }
      // Any other revert will not change by crawling the range again; a transient failure that outlasted
      // the retries is rethrown, so the watcher retries the range without checkpointing it.
      if (revert) {
        ctx.log.emit({ type: "task-failed", taskId, code: revert.code, message: revert.message, ...errorDetails(revert) });
        return undefined;
      }
      throw error;
    }
    return own;
  }
}

function fetchBlob(ctx: TaskHandlerContext, store: BlobStore, cid: string): Promise<Uint8Array> {
  return retrying(ctx, `get ${cid}`, () => store.get(cid, { maxBytes: MAX_BLOB_BYTES }));
}

/** The task job's params: the envelope checked before the accept, its program and input, and the evidence its provenance names. */
async function fetchBlobs(ctx: TaskHandlerContext, task: SubmittedTask, checked: CheckedEnvelope): Promise<RunTaskParams> {
  // A small input rides inline in the envelope; the enclave checks it against the spec either way.
  const inputRef = checked.envelope.input;
  const [program, input] = await Promise.all([
    fetchBlob(ctx, ctx.programStore ?? ctx.store, checked.envelope.program.cid),
    "inline" in inputRef ? decodeInlineInput(inputRef) : fetchBlob(ctx, ctx.store, inputRef.cid),
  ]);
  return {
    binding: { chainId: ctx.chainId, market: ctx.market, taskId: task.taskId },
    spec: task.spec,
    envelope: checked.bytes,
    program,
    input,
    evidenceCid: ctx.evidenceCid,
  };
}

/** Publishes what the enclave returned: the store must name the blobs by the CIDs the enclave signed. */
async function publish(ctx: TaskHandlerContext, run: { result: Uint8Array; provenance: Uint8Array; outputCid: string; provenanceCid: string }): Promise<void> {
  const putBlob = (bytes: Uint8Array) => retrying(ctx, "put", () => ctx.store.put(bytes));
  const [outputCid, provenanceCid] = await Promise.all([putBlob(run.result), putBlob(run.provenance)]);
  if (outputCid !== run.outputCid || provenanceCid !== run.provenanceCid) {
    throw new TaskPublishError(
      `the store named the result ${outputCid} and the provenance ${provenanceCid}, but the enclave signed ${run.outputCid} and ${run.provenanceCid}: ` +
        "the store does not use the fixed CID profile (CIDv1, raw leaves, 256 KiB chunks; src/storage/unixfs-profile.ts)",
    );
  }
}

/** The node's store gave other CIDs than the enclave signed: the completion would point the requester nowhere. */
export class TaskPublishError extends CloisterError<"CID_PROFILE_MISMATCH"> {
  constructor(message: string) {
    super("CID_PROFILE_MISMATCH", message);
  }
}

export async function handleTask(ctx: TaskHandlerContext, task: SubmittedTask): Promise<void> {
  const taskId = task.taskId.toString();
  const signer = ctx.enclave.identity.signer;
  ctx.log.emit({ type: "task-seen", taskId });
  const candidates = task.spec.candidates.map((c) => c.toLowerCase());
  if (candidates.length > 0 && !candidates.includes(signer.toLowerCase())) {
    ctx.log.emit({ type: "task-skipped", taskId, reason: "this node's enclave is not a candidate" });
    return;
  }
  const turn = await awaitTurn(ctx, task);
  if (turn === undefined) return;
  const checked = await checkBeforeAccept({ fetch: (cid) => fetchBlob(ctx, ctx.store, cid), enclave: signer }, task.taskId, task.spec);
  if (!checked.ok) {
    ctx.log.emit({ type: "task-skipped", taskId, reason: checked.reason });
    return;
  }
  const admit = ctx.admit ?? ((job) => job());
  await admit(async () => {
    const refusal = turn === "accept" ? await ctx.refusalToAccept?.(task) : undefined;
    if (refusal !== undefined) {
      ctx.log.emit({ type: "task-skipped", taskId, reason: refusal });
      return;
    }
    // An idle node runs the task in its enclave while the accept is on its way: the output is encrypted to
    // the requester and the signature is good only for the assignment the market records, so a run whose
    // accept fails is merely discarded, and a lone task saves the accept's round trip. A busy node accepts
    // first: its enclave's time is better spent on tasks it holds than on one another candidate may take.
    const speculate = turn === "accept" && enclaveRuns.get(ctx) === undefined;
    const run = speculate ? runInEnclave(ctx, task, checked.checked) : undefined;
    const assignment = turn === "accept" ? await acceptOrResume(ctx, task).catch(async (error: unknown) => {
      await run;
      throw error;
    }) : turn;
    if (assignment) await completeRun(ctx, task, assignment, await (run ?? runInEnclave(ctx, task, checked.checked)));
    else await run;
  });
  // Handled for good (a failure above is rethrown and the task handled again): forget the accept sent for it.
  ctx.ownAccepts?.tried.delete(task.taskId);
}

/** What the enclave made of a task: its outputs, published, or the error that stopped it (with the params it got, if any). */
type EnclaveRun = { ok: true; out: TaskRun } | { ok: false; error: unknown; params: RunTaskParams | undefined };

/** Runs in flight per node (its handler context): a node with none is idle. */
const enclaveRuns = new WeakMap<TaskHandlerContext, number>();

/** Fetches the task's blobs, runs it in the enclave and publishes what it returns; never rejects. */
async function runInEnclave(ctx: TaskHandlerContext, task: SubmittedTask, checked: CheckedEnvelope): Promise<EnclaveRun> {
  let params: RunTaskParams | undefined;
  enclaveRuns.set(ctx, (enclaveRuns.get(ctx) ?? 0) + 1);
  try {
    const runSlot = ctx.runSlot ?? ((job) => job());
    const out = await runSlot(async () => {
      params = await fetchBlobs(ctx, task, checked);
      const result = await runTaskJob(ctx.enclave, params, { timeoutMs: runTaskTimeoutMs(checked.envelope.limits) });
      await publish(ctx, result);
      return result;
    });
    return { ok: true, out };
  } catch (error) {
    return { ok: false, error, params };
  } finally {
    const left = (enclaveRuns.get(ctx) ?? 1) - 1;
    if (left === 0) enclaveRuns.delete(ctx);
    else enclaveRuns.set(ctx, left);
  }
}

/** Relays an accepted task's completion, or its refusal when the enclave could not run it; failures are logged, not thrown. */
async function completeRun(ctx: TaskHandlerContext, task: SubmittedTask, assignment: Assignment, run: EnclaveRun): Promise<void> {
  const taskId = task.taskId.toString();
  try {
    if (!run.ok) throw run.error;
    const { out } = run;
    ctx.log.emit({ type: "task-executed", taskId, outputCid: out.outputCid, provenanceCid: out.provenanceCid });
    const completed = await retrying(ctx, `completeTask ${taskId}`, () => ctx.batches.complete({
      taskId: task.taskId,
      spec: task.spec,
      assignment,
      outputDigest: out.outputDigest,
      provenanceDigest: out.provenanceDigest,
      outputCid: out.outputCid,
      provenanceCid: out.provenanceCid,
      signature: out.signature,
    }));
    ctx.log.emit({ type: "task-completed", taskId, transactionHash: completed.hash, gasUsed: completed.gasUsed.toString(), batchSize: completed.batchSize });
  } catch (error) {
    // Shutting down: leave the range unhandled, so the restarted node resumes this task.
    if (ctx.retry?.signal?.aborted) throw error;
    const e = error as Error & { code?: string };
    // The enclave could not run the task: when its own inputs are to blame, the enclave signs a refusal
    // and the node ends the attempt with it, keeping its deposit.
    let refusal = "";
    const params = run.ok ? undefined : run.params;
    if (params && isEnclaveError(error)) {
      try {
        if (await refuseIfUnrunnable({ ...ctx, retrying: (what, op) => retrying(ctx, what, op) }, task, assignment, params, error)) return;
      } catch (refusalError) {
        if (ctx.retry?.signal?.aborted) throw refusalError;
        refusal = `; refusing it failed too: ${(refusalError as Error).message}`;
      }
    }
    // A relay step failed, or the failure may be the host's: the task stays accepted and unpaid, and the
    // requester reclaims it after the deadline.
    ctx.log.emit({ type: "task-failed", taskId, code: e.code ?? "INTERNAL", message: `${e.message}${refusal}`, ...errorDetails(e) });
  }
}
