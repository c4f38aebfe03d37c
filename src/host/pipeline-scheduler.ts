/**
 * The node's pipeline scheduler (issue 14): every poll it reads the pipelines
 * whose candidates include this node's enclave (PipelineRegistered,
 * CandidateSet, PipelineRetired), and for each one with a schedule finds the
 * latest slot; if no run was anchored since that slot, the node runs it when
 * it is its turn (protocol/schedule.ts: the slot's own candidate at once, the
 * next one `failoverAfterMs` later, and so on), so a dead node's runs are
 * taken over after a deadline. Two nodes that run the same slot run the same
 * run (its id is a function of the cursor): the destination's run marker lets
 * one load it and the chain anchors it once; the other's anchor is refused
 * and it records the slot as done. An owner's request (Pipelines.requestRun)
 * is a due slot too, with or without a schedule: its number picks the first
 * candidate, its block's time starts the deadlines, and it is done once a run
 * is anchored in a later block (requests made before that run are served by
 * it).
 */
import { getBlock, getContractEvents } from "viem/actions";
import type { Address } from "viem";
import { pipelinesAbi } from "../chain/abi/Pipelines.ts";
import { readPipelineRuns } from "../chain/actions/read-pipeline.ts";
import type { WriterClient } from "../chain/clients.ts";
import { parseSchedule, requestTurn, slotTurn, type Schedule } from "../protocol/schedule.ts";
import type { HostLog } from "./log.ts";
import { startPollLoop, type PollLoop } from "./poll-loop.ts";
import type { PipelineRunOutcome } from "./pipeline-run.ts";

export interface PipelineSchedulerOptions {
  reader: WriterClient;
  contract: Address;
  /** This node's enclave. */
  me: Address;
  fromBlock: bigint;
  run(pipelineId: bigint): Promise<PipelineRunOutcome>;
  log: HostLog;
  /** Default 1000 ms. */
  pollIntervalMs?: number;
  /** How long after a slot the next candidate takes it over (default: CLOISTER_PIPELINE_FAILOVER_MS, else 60 s). */
  failoverAfterMs?: number;
  /** Unix seconds (tests). */
  now?: () => number;
}

interface Known {
  /** Block timestamp of the registration: a slot's clock starts no earlier. */
  registeredAt: number;
  candidates: Address[];
  schedule: Schedule | undefined;
  retired: boolean;
  /** The latest slot known to be done. */
  doneSlot: number;
  /** The owner's latest request (RunRequested), and the latest one known to be done. */
  request: { number: number; at: number; blockNumber: bigint } | undefined;
  doneRequest: number;
  /** After a failure: no new attempt before this (unix seconds), doubling per failure up to a minute. */
  retryAt: number;
  failures: number;
}

/** The failover deadline when none is configured: CLOISTER_PIPELINE_FAILOVER_MS (the nodes of a devnet inherit it), else 60 s. */
export function defaultFailoverAfterMs(): number {
  const env = Number(process.env.CLOISTER_PIPELINE_FAILOVER_MS);
  return Number.isFinite(env) && env > 0 ? env : 60_000;
}

export class PipelineScheduler {
  readonly #o: PipelineSchedulerOptions;
  readonly #known = new Map<bigint, Known>();
  #from: bigint;
  #running = new Set<bigint>();
  #loop: PollLoop | undefined;

  constructor(options: PipelineSchedulerOptions) {
    this.#o = options;
    this.#from = options.fromBlock;
  }

  start(): void {
    this.#loop = startPollLoop(() => this.poll(), { intervalMs: this.#o.pollIntervalMs ?? 1000, onError: (error: unknown) => this.#o.log.emit({ type: "watcher-error", source: "chain-follower", code: (error as { code?: string }).code ?? "PIPELINE_SCHEDULER", message: (error as Error).message }) });
  }

  async stop(): Promise<void> {
    await this.#loop?.stop();
  }

  /** One pass: new events, then every due request and slot of a pipeline this node is a candidate of. */
  async poll(): Promise<void> {
    await this.#readEvents();
    const now = this.#o.now?.() ?? Math.floor(Date.now() / 1000);
    const failoverSec = (this.#o.failoverAfterMs ?? defaultFailoverAfterMs()) / 1000;
    for (const [pipelineId, p] of this.#known) {
      if (p.retired || this.#running.has(pipelineId)) continue;
      await this.#serveRequest(pipelineId, p, now, failoverSec);
      await this.#serveSlot(pipelineId, p, now, failoverSec);
    }
  }

  async #serveRequest(pipelineId: bigint, p: Known, now: number, failoverSec: number): Promise<void> {
    const r = p.request;
    if (!r || r.number <= p.doneRequest || now < p.retryAt) return;
    const turn = requestTurn(r.number, r.at, p.candidates, this.#o.me, failoverSec);
    if (!turn || now < turn.eligibleAt) return;
    const done = () => (p.doneRequest = Math.max(p.doneRequest, r.number));
    const last = (await readPipelineRuns(this.#o.reader, this.#o.contract, pipelineId, this.#o.fromBlock)).at(-1);
    if (last && last.blockNumber > r.blockNumber) done();
    else await this.#runDue(pipelineId, p, now, { slot: r.at, failover: !turn.mine, request: r.number }, done);
  }

  async #serveSlot(pipelineId: bigint, p: Known, now: number, failoverSec: number): Promise<void> {
    if (!p.schedule || now < p.retryAt) return;
    const slot = p.schedule.previous(now);
    if (slot === undefined || slot <= p.doneSlot) return;
    const turn = slotTurn(p.schedule, slot, p.candidates, this.#o.me, failoverSec);
    // The first slot of a new pipeline may have begun before it was registered: its deadlines count from the registration.
    if (!turn || now < turn.eligibleAt + Math.max(0, p.registeredAt - slot)) return;
    const done = () => (p.doneSlot = slot);
    if (await this.#anchoredSince(pipelineId, slot)) done();
    else await this.#runDue(pipelineId, p, now, { slot, failover: !turn.mine }, done);
  }

  /** Runs a due slot or request; `done` marks it served once a run is anchored, by this node or by another first. */
  async #runDue(pipelineId: bigint, p: Known, now: number, started: { slot: number; failover: boolean; request?: number }, done: () => void): Promise<void> {
    this.#running.add(pipelineId);
    this.#o.log.emit({ type: "pipeline-started", pipelineId: pipelineId.toString(), ...started });
    try {
      const r = await this.#o.run(pipelineId);
      done();
      p.failures = 0;
      this.#o.log.emit({ type: "pipeline-anchored", pipelineId: pipelineId.toString(), run: r.run, runId: r.runId, read: r.read, written: r.written, resumed: r.resumed, transactionHash: r.transactionHash, gasUsed: r.gasUsed.toString() });
    } catch (error) {
      const message = (error as Error).message;
      // Another candidate anchored this run first: the slot or request is done.
      if (/RunAlreadyAnchored|CursorMismatch/.test(message)) done();
      else {
        p.failures += 1;
        p.retryAt = now + Math.min(60, 2 ** (p.failures - 1));
      }
      this.#o.log.emit({ type: "pipeline-failed", pipelineId: pipelineId.toString(), code: (error as { code?: string }).code ?? "PIPELINE_RUN_FAILED", message });
    } finally {
      this.#running.delete(pipelineId);
    }
  }

  async #anchoredSince(pipelineId: bigint, slot: number): Promise<boolean> {
    const last = (await readPipelineRuns(this.#o.reader, this.#o.contract, pipelineId, this.#o.fromBlock)).at(-1);
    if (!last) return false;
    const block = await getBlock(this.#o.reader, { blockNumber: last.blockNumber });
    return Number(block.timestamp) >= slot;
  }

  async #readEvents(): Promise<void> {
    const head = await this.#o.reader.getBlockNumber();
    if (head < this.#from) return;
    const range = { address: this.#o.contract, abi: pipelinesAbi, fromBlock: this.#from, toBlock: head, strict: true } as const;
    const registered = await getContractEvents(this.#o.reader, { ...range, eventName: "PipelineRegistered" });
    const changed = await getContractEvents(this.#o.reader, { ...range, eventName: "CandidateSet" });
    const retired = await getContractEvents(this.#o.reader, { ...range, eventName: "PipelineRetired" });
    const requested = await getContractEvents(this.#o.reader, { ...range, eventName: "RunRequested" });
    for (const e of registered) {
      let schedule: Schedule | undefined;
      try {
        schedule = e.args.schedule ? parseSchedule(e.args.schedule) : undefined;
      } catch {
        schedule = undefined; // an unparsable schedule: runs only on demand
      }
      const registeredAt = Number((await getBlock(this.#o.reader, { blockNumber: e.blockNumber })).timestamp);
      this.#known.set(e.args.pipelineId, { registeredAt, candidates: [...e.args.candidates], schedule, retired: false, doneSlot: 0, request: undefined, doneRequest: 0, retryAt: 0, failures: 0 });
    }
    for (const e of changed) {
      const p = this.#known.get(e.args.pipelineId);
      if (!p) continue;
      p.candidates = e.args.allowed ? [...p.candidates.filter((c) => c.toLowerCase() !== e.args.enclave.toLowerCase()), e.args.enclave] : p.candidates.filter((c) => c.toLowerCase() !== e.args.enclave.toLowerCase());
    }
    for (const e of requested) {
      const p = this.#known.get(e.args.pipelineId);
      if (!p || (p.request && p.request.number >= e.args.request)) continue;
      const at = Number((await getBlock(this.#o.reader, { blockNumber: e.blockNumber })).timestamp);
      p.request = { number: e.args.request, at, blockNumber: e.blockNumber };
    }
    for (const e of retired) {
      const p = this.#known.get(e.args.pipelineId);
      if (p) p.retired = true;
    }
    this.#from = head + 1n;
  }
}
