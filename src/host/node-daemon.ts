/**
 * The node daemon (untrusted host): gets its enclave attested and registered,
 * posts its offers,
 * then watches the market for tasks its enclave may run and relays them, and
 * reopens the attempts other enclaves let expire on those tasks (reopen-keeper.ts).
 * Its registration is renewed before it expires (registration-keeper.ts); while
 * it is expired or revoked the node withdraws its offers and accepts nothing.
 */
import type { AttestationServiceClient } from "../cas/client.ts";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { zeroAddress, type Address, type Hex } from "viem";
import { readContract } from "viem/actions";
import { encodeEvidence } from "../attestation/evidence-codec.ts";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { postOffer, withdrawOffer, type PostOfferParams } from "../chain/actions/offers.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import { PipelineScheduler } from "./pipeline-scheduler.ts";
import { CollabDriver, type CollabDriverOptions } from "./collab-driver.ts";
import { PipelineHostError, runPipelineOnce, type PipelineRunContext, type PipelineRunOutcome } from "./pipeline-run.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { cacheGets } from "../storage/cached-gets.ts";
import { coalescePuts } from "../storage/coalescing-store.ts";
import { refusalToAccept, type RegistrationSnapshot, type RegistrationState } from "./attestation-lifecycle.ts";
import { startNodeHttpServer, type NodeHealth, type NodeHttpServer, type RegistrationHealth } from "./http-server.ts";
import { createLimiter } from "../util/limiter.ts";
import { runCapacity, type RunCapacity } from "./capacity.ts";
import { errorDetails, fileHostLog, type FileHostLog, type HostEvent, type HostLog } from "./log.ts";
import { meteredLog, NodeMetrics } from "./metrics.ts";
import { RegistrationKeeper } from "./registration-keeper.ts";
import { startReopenKeeper } from "./reopen-keeper.ts";
import { isTransientError } from "./retry.ts";
import { nodeMarketBatches } from "./market-batches.ts";
import { handleTask, type TaskHandlerContext } from "./task-handler.ts";
import { watchSubmittedTasks, type SubmittedTask } from "./task-watcher.ts";
import { openNodeFollower } from "./node-follower.ts";
import type { ChainFollower, FollowerSubscription } from "../chain/follower.ts";
import type { HeadSource } from "../chain/new-heads.ts";
import type { Deployment } from "../chain/deployment.ts";

export interface NodeDaemonOptions {
  /** Client whose account is this node's operator. */
  writer: WriterClient;
  deployment: Deployment;
  store: BlobStore;
  enclave: EnclaveClient;
  attestationService: AttestationServiceClient;
  /** Holds the chain follower's checkpoint and host.log. */
  dataDir: string;
  pollIntervalMs?: number;
  /** New heads by push (chain/new-heads.ts): the chain follower reads on each, and polls only as a safety net while they arrive. */
  newHeads?: HeadSource;
  /** Tasks in the fetch-run-publish step at once (default defaultRunConcurrency()), lowered to what the machine's memory holds (capacity.ts). */
  concurrency?: number;
  /** The machine's memory, MB (default: the OS's figure); offers times concurrency must fit in it. */
  machineMemoryMb?: number;
  /**
   * Tasks the node holds at once, from accept to completion (default 64): the node accepts no more while
   * that many wait to run or to be completed, so it does not take on work it cannot finish in time.
   */
  maxTasksHeld?: number;
  onEvent?: (event: HostEvent) => void;
  /** What the node offers its enclave for, per payment token (default: defaultNodeOffer in native currency). */
  offers?: NodeOffer[];
  /**
   * How often the reopen keeper reads the market for attempts past their deadline (default 1000 ms);
   * false turns it off (then only the requester, or other nodes, reopen this node's candidate tasks).
   */
  reopenKeeper?: { pollIntervalMs?: number } | false;
  /** How the registration is kept (registration-keeper.ts): chain reads every pollIntervalMs (default 5000), renewals retried from retryBaseMs (default 1000) doubling to retryMaxMs (default 60 000). */
  registration?: { pollIntervalMs?: number; retryBaseMs?: number; retryMaxMs?: number };
  /** Serve GET /healthz and GET /metrics (on 127.0.0.1 unless `host` says otherwise; port 0 picks one). */
  http?: { port: number; host?: string; crawlStaleAfterMs?: number };
  /** The pipeline scheduler (pipeline-scheduler.ts), on when the deployment has Pipelines; false turns it off. */
  pipelines?: { pollIntervalMs?: number; failoverAfterMs?: number } | false;
  /** Runs its parties' sides of clean-room runs requested on chain (collab-driver.ts), when the deployment has Collaborations and the relay takes inbound connections. */
  collab?: Pick<CollabDriverOptions, "nextListener" | "pollIntervalMs" | "peerTimeoutMs">;
}

/** An offer the node posts for its enclave at start (postOffer); price in `token` units. */
export type NodeOffer = Omit<PostOfferParams, "enclave">;

/** 0.001 ether per task, one core, 1 GiB, up to 10 minutes of execution. */
export const defaultNodeOffer: NodeOffer = { token: zeroAddress, price: 10n ** 15n, cpuMillis: 1000, memoryMb: 1024, maxDuration: 600 };

/**
 * Tasks a node moves through fetch, run and publish at once: four per core. A small task spends most of
 * that step waiting on IPFS and the enclave's channel, so a few per core keep the cores busy and let
 * completions leave in larger batches (measured on 2 cores, 500 tasks at once, medians of three runs: 4 → 8
 * took 46.6 → 51.4 tasks/s and 7 → 10 completions per transaction). Tasks are limited by CPU time, with a
 * wall-time backstop (4 × by default): a node that runs CPU-heavy tasks should still pass a lower
 * --concurrency, or their wall time grows with the share of a core each gets.
 */
export function defaultRunConcurrency(): number {
  return 4 * availableParallelism();
}

/** Default for NodeDaemonOptions.maxTasksHeld. */
const defaultMaxTasksHeld = 64;

/** Programs repeat across tasks: the node keeps up to this many bytes of them. */
const programCacheBytes = 64 * 1024 * 1024;

/** How long the crawler may fail before /healthz answers 503 (default). */
const defaultCrawlStaleAfterMs = 30_000;

export class NodeDaemon {
  readonly #options: NodeDaemonOptions;
  readonly log: HostLog;
  readonly metrics = new NodeMetrics();
  /** Tasks this node runs at once, and why that is fewer than configured when it is. */
  readonly capacity: RunCapacity;
  #tasks: FollowerSubscription | undefined;
  #keeper: { stop(): Promise<void> } | undefined;
  #evidenceCid: string | undefined;
  #registration: RegistrationKeeper | undefined;
  /** Reads the market for the task watcher and the reopen keeper (chain/follower.ts). */
  #follower: ChainFollower | undefined;
  #ctx: TaskHandlerContext | undefined;
  /** Offer posts and withdrawals on registration changes, one after another. */
  #offerUpdates: Promise<void> = Promise.resolve();
  readonly #fileLog: FileHostLog;
  /** Category time references (seconds) read from the market, for the deadline of a task about to be accepted. */
  readonly #categoryTimeRefs = new Map<number, Promise<number>>();
  /** Aborts the handlers' retries on stop. */
  readonly #shutdown = new AbortController();
  #http: NodeHttpServer | undefined;
  #watchingSince: number | undefined;
  #lastCrawl: { at: number; block: bigint } | undefined;
  #lastCrawlError: string | undefined;
  #enclaveExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  /** Throws NodeCapacityError when an offer promises a task more memory than the machine has for tasks. */
  constructor(options: NodeDaemonOptions) {
    this.#options = options;
    this.capacity = runCapacity({
      offers: options.offers ?? [defaultNodeOffer],
      concurrency: options.concurrency ?? defaultRunConcurrency(),
      machineMemoryMb: options.machineMemoryMb,
    });
    this.#fileLog = fileHostLog(join(options.dataDir, "host.log"), options.onEvent);
    this.log = meteredLog(this.#fileLog, this.metrics);
    void options.enclave.exited.then((exit) => {
      this.#enclaveExit = exit;
      this.metrics.enclaveUp.set(0);
    });
  }

  /** Where /healthz and /metrics are served, once started with `http`. */
  get httpUrl(): string | undefined {
    return this.#http?.url;
  }

  /** Runs pipeline `pipelineId`'s next run on this node's enclave and anchors it (host/pipeline-run.ts). */
  runPipeline(pipelineId: bigint, options: Pick<PipelineRunContext, "timeoutMs" | "beforeAnchor"> = {}): Promise<PipelineRunOutcome> {
    const { enclave, writer, deployment, store } = this.#options;
    if (!deployment.pipelines) throw new PipelineHostError("PIPELINE_UNKNOWN", "this network's deployment has no Pipelines contract");
    return runPipelineOnce({ enclave, writer, store, contract: deployment.pipelines, chainId: BigInt(deployment.chainId), evidenceCid: this.#evidenceCid!, ...options }, pipelineId);
  }

  get signer(): Address {
    return this.#options.enclave.identity.signer;
  }

  /** The node's enclave and the evidence CID of its registration (undefined before start): jobs the node's operator starts itself (`cloister operate`) go through them. */
  get enclaveJobs(): { enclave: EnclaveClient; evidenceCid: string | undefined; writer: WriterClient } {
    return { enclave: this.#options.enclave, evidenceCid: this.#evidenceCid, writer: this.#options.writer };
  }

  /**
   * Checks that the node's saved positions are not ahead of the chain, attests the enclave and has it
   * registered, posts its offers, and starts handling tasks.
   */
  async start(): Promise<void> {
    const { enclave, writer, deployment, dataDir } = this.#options;
    const id = enclave.identity;
    this.log.emit({ type: "enclave-ready", signer: id.signer, measurement: id.measurement, simulated: id.simulated, teeType: id.teeType });
    this.#follower = openNodeFollower(dataDir, {
      reader: writer,
      heads: this.#options.newHeads,
      pollIntervalMs: this.#options.pollIntervalMs ?? 100,
      onError: (error) => {
        if (isTransientError(error)) this.metrics.rpcErrors.inc();
        this.#lastCrawlError = (error as Error).message;
        this.log.emit({ type: "watcher-error", source: "chain-follower", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message, ...errorDetails(error) });
      },
      onCrawled: () => {
        const block = this.#tasks!.position;
        this.#lastCrawl = { at: Date.now(), block };
        this.metrics.checkpointBlock.set(Number(block));
      },
    });
    this.#follower.assertNotAheadOf(await writer.getBlockNumber({ cacheTime: 0 }));
    const registration = this.#options.registration;
    this.#registration = new RegistrationKeeper({
      reader: writer,
      registry: deployment.registry,
      enclave: id.signer,
      attestAndRegister: () => this.#attestAndRegister(),
      pollIntervalMs: registration?.pollIntervalMs,
      retryBaseMs: registration?.retryBaseMs,
      retryMaxMs: registration?.retryMaxMs,
      onTransition: (from, to) => this.#onRegistrationChange(from, to),
      onError: (error) => {
        if (isTransientError(error)) this.metrics.rpcErrors.inc();
        this.log.emit({ type: "watcher-error", source: "registration", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message, ...errorDetails(error) });
      },
    });
    await this.#registration.start();
    await this.#postOffers();
    this.#startWatching(await writer.getBlockNumber({ cacheTime: 0 }));
    await this.#startHttpServer();
    this.#startPipelineScheduler();
    this.#startCollabDriver();
  }

  #collabDriver: CollabDriver | undefined;

  #startCollabDriver(): void {
    const { deployment, writer, store, enclave, collab, dataDir } = this.#options;
    if (!deployment.collaborations || !collab) return;
    this.#collabDriver = new CollabDriver({ ...collab, writer, contract: deployment.collaborations, store, enclave, fromBlock: deployment.deployBlock, dataDir, log: this.log });
    this.#collabDriver.start();
  }

  #pipelineScheduler: PipelineScheduler | undefined;

  #startPipelineScheduler(): void {
    const { deployment, writer, pipelines } = this.#options;
    if (!deployment.pipelines || pipelines === false) return;
    this.#pipelineScheduler = new PipelineScheduler({
      reader: writer,
      contract: deployment.pipelines,
      me: this.signer,
      fromBlock: deployment.deployBlock,
      run: (id) => this.runPipeline(id),
      log: this.log,
      pollIntervalMs: pipelines?.pollIntervalMs,
      failoverAfterMs: pipelines?.failoverAfterMs,
    });
    this.#pipelineScheduler.start();
  }

  /** The node's one call to attest: a fresh challenge, the enclave's evidence on IPFS, the service's registration. */
  async #attestAndRegister(): Promise<{ transactionHash: Hex }> {
    const { enclave, store, attestationService, writer } = this.#options;
    const id = enclave.identity;
    const nonce = await attestationService.challenge();
    const { evidence } = await enclave.attest({ freshness: nonce, operator: writer.account.address });
    // The document names the keys report_data commits to: verifiers take the P-256 keys from it.
    const keys = { signer: id.signer, hpkePublicKey: id.hpkePublicKey, provenanceKey: id.provenanceKey, tlsKey: id.tlsKey };
    const evidenceCid = await store.put(encodeEvidence(evidence, keys));
    const registered = await attestationService.register({
      ...keys,
      operator: writer.account.address,
      evidenceCid,
      nonce,
    });
    // Provenance names the evidence of the latest registration, the one requesters verify.
    this.#evidenceCid = evidenceCid;
    if (this.#ctx) this.#ctx.evidenceCid = evidenceCid;
    this.log.emit({ type: "enclave-registered", signer: id.signer, evidenceCid, expiry: registered.expiry.toString(), transactionHash: registered.transactionHash });
    return registered;
  }

  async #postOffers(): Promise<void> {
    const { writer, deployment, enclave } = this.#options;
    for (const offer of this.#options.offers ?? [defaultNodeOffer]) {
      const posted = await postOffer(writer, deployment.market, { ...offer, enclave: enclave.identity.signer });
      this.log.emit({ type: "offer-posted", signer: enclave.identity.signer, token: offer.token, price: offer.price.toString(), transactionHash: posted.hash });
    }
  }

  async #withdrawOffers(): Promise<void> {
    const { writer, deployment, enclave } = this.#options;
    for (const offer of this.#options.offers ?? [defaultNodeOffer]) {
      const withdrawn = await withdrawOffer(writer, deployment.market, enclave.identity.signer, offer.token);
      this.log.emit({ type: "offer-withdrawn", signer: enclave.identity.signer, token: offer.token, transactionHash: withdrawn.hash });
    }
  }

  /**
   * Logs and meters every transition; withdraws the offers when the registration is gone (requesters stop
   * naming an enclave that cannot accept), and posts them again when an expired one is renewed.
   */
  #onRegistrationChange(from: RegistrationState, to: Readonly<RegistrationSnapshot>): void {
    this.metrics.setRegistrationState(to.state);
    this.#meterExpiry();
    if (from !== to.state) {
      this.log.emit({ type: "registration-changed", signer: this.signer, from, state: to.state, expiry: to.expiry?.toString() ?? null, ...(to.lastError === undefined ? {} : { error: to.lastError }) });
    }
    const update = (to.state === "expired" || to.state === "revoked") && from !== "expired" && from !== "attesting" ? () => this.#withdrawOffers()
      : to.state === "registered" && from === "expired" ? () => this.#postOffers()
      : undefined;
    if (!update) return;
    this.#offerUpdates = this.#offerUpdates.then(update).catch((error: unknown) => {
      this.log.emit({ type: "watcher-error", source: "registration", code: (error as { code?: string }).code ?? "OFFER_UPDATE", message: (error as Error).message, ...errorDetails(error) });
    });
  }

  #meterExpiry(): void {
    const expiry = this.#registration?.lifecycle.snapshot.expiry;
    this.metrics.registrationExpirySeconds.set(expiry === undefined ? 0 : Number(expiry - this.#registration!.estimatedChainNow()));
  }

  /** Why a task must not be accepted now: its deadline, if accepted now, against the registration (attestation-lifecycle.ts). */
  async #refusalToAccept(task: SubmittedTask): Promise<string | undefined> {
    const registration = this.#registration!;
    const { category, deadlineMultiple } = task.spec;
    let timeRef = this.#categoryTimeRefs.get(category);
    if (!timeRef) {
      const { writer, deployment } = this.#options;
      timeRef = readContract(writer, { address: deployment.market, abi: taskMarketAbi, functionName: "categoryTimeRef", args: [category] }).then(Number);
      this.#categoryTimeRefs.set(category, timeRef);
      timeRef.catch(() => this.#categoryTimeRefs.delete(category));
    }
    const deadline = registration.estimatedChainNow() + BigInt(await timeRef) * BigInt(deadlineMultiple);
    return refusalToAccept(registration.lifecycle.snapshot, deadline);
  }

  #startWatching(startBlock: bigint): void {
    const { writer, deployment, store, enclave } = this.#options;
    const follower = this.#follower!;
    const runSlot = createLimiter(this.capacity.concurrency);
    const admit = createLimiter(this.#options.maxTasksHeld ?? defaultMaxTasksHeld);
    const batches = nodeMarketBatches({ writer, market: deployment.market, enclave: enclave.identity.signer });
    const retry = { signal: this.#shutdown.signal, onRetry: () => this.metrics.rpcErrors.inc() };
    // The reopen keeper's sends; the task handlers' go through the writer's own send lane (send-transaction.ts).
    const sendSerially = createLimiter(1);
    const ctx: TaskHandlerContext = {
      writer,
      market: deployment.market,
      chainId: BigInt(deployment.chainId),
      batches,
      // Results and provenance records of tasks finishing together go up in one request.
      store: coalescePuts(store),
      programStore: cacheGets(store, { maxBytes: programCacheBytes }),
      admit,
      runSlot,
      enclave,
      evidenceCid: this.#evidenceCid!,
      log: this.log,
      retry,
      ownAccepts: { since: startBlock, tried: new Map<bigint, number>() },
      refusalToAccept: (task) => this.#refusalToAccept(task),
    };
    this.#ctx = ctx;
    this.#watchingSince = Date.now();
    this.#tasks = watchSubmittedTasks(follower, { market: deployment.market, fromBlock: deployment.deployBlock, handle: (task) => handleTask(ctx, task) });
    follower.start();
    const keeper = this.#options.reopenKeeper;
    if (keeper === false) return;
    this.#keeper = startReopenKeeper({
      writer,
      market: deployment.market,
      enclave: enclave.identity.signer,
      follower,
      fromBlock: deployment.deployBlock,
      pollIntervalMs: keeper?.pollIntervalMs ?? 1_000,
      log: this.log,
      sendSerially,
      onError: (error) => {
        if (isTransientError(error)) this.metrics.rpcErrors.inc();
        this.log.emit({ type: "watcher-error", source: "reopen-keeper", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message, ...errorDetails(error) });
      },
    });
  }

  async #startHttpServer(): Promise<void> {
    const http = this.#options.http;
    if (!http) return;
    this.#http = await startNodeHttpServer({ host: http.host ?? "127.0.0.1", port: http.port, health: () => this.health(), metrics: { render: () => this.#renderMetrics() } });
  }

  /** Seconds to expiry move with the chain's clock: they are computed as the metrics are scraped. */
  #renderMetrics(): Promise<string> {
    this.#meterExpiry();
    return this.metrics.render();
  }

  /** What GET /healthz answers: unavailable once the enclave process has exited or the crawler has failed for too long. */
  health(): NodeHealth {
    const id = this.#options.enclave.identity;
    const now = Date.now();
    const staleAfterMs = this.#options.http?.crawlStaleAfterMs ?? defaultCrawlStaleAfterMs;
    const crawledAt = this.#lastCrawl?.at ?? this.#watchingSince;
    const registration = this.#registrationHealth();
    let reason: string | undefined;
    if (registration.state === "expired" || registration.state === "revoked" || registration.state === "attesting") {
      reason = registration.state === "revoked"
        ? "the enclave was revoked in the registry: it can take no more tasks; start a new enclave (new key) and have it attested"
        : registration.state === "expired"
          ? `the enclave's registration expired at ${registration.expiry} (chain time ${registration.chainTime}) and is not renewed yet: ${registration.lastError ?? "renewing"}; check the attestation service`
          : "the enclave is not registered yet";
    } else if (this.#enclaveExit) {
      const { code, signal } = this.#enclaveExit;
      reason = `the enclave process exited (code ${code}, signal ${signal}); restart the node to start a new enclave`;
    } else if (crawledAt === undefined) {
      reason = "the node has not started watching the market yet";
    } else if (now - crawledAt > staleAfterMs) {
      reason = `the market crawler has not succeeded for ${now - crawledAt} ms (last error: ${this.#lastCrawlError ?? "none"}); check the chain RPC endpoint`;
    }
    return {
      status: reason === undefined ? "ok" : "unavailable",
      ...(reason === undefined ? {} : { reason }),
      enclave: { signer: id.signer, simulated: id.simulated, up: this.#enclaveExit === undefined },
      checkpointBlock: this.#lastCrawl?.block.toString() ?? null,
      lastCrawlAgeMs: this.#lastCrawl ? now - this.#lastCrawl.at : null,
      registration,
    };
  }

  #registrationHealth(): RegistrationHealth {
    const keeper = this.#registration;
    if (!keeper) return { state: "attesting", expiry: null, chainTime: null, secondsToExpiry: null, failures: 0 };
    const { state, expiry, failures, lastError } = keeper.lifecycle.snapshot;
    const chainTime = keeper.chainTime;
    this.#meterExpiry();
    return {
      state,
      expiry: expiry?.toString() ?? null,
      chainTime: chainTime?.toString() ?? null,
      secondsToExpiry: expiry === undefined ? null : Number(expiry - keeper.estimatedChainNow()),
      failures,
      ...(lastError === undefined ? {} : { lastError }),
    };
  }

  async stop(): Promise<void> {
    this.#shutdown.abort(new Error("the node daemon is stopping"));
    await Promise.all([this.#pipelineScheduler?.stop(), this.#collabDriver?.stop(), this.#follower?.stop(), this.#keeper?.stop(), this.#registration?.stop()]);
    await this.#offerUpdates;
    await this.#http?.close();
    await this.#options.enclave.close();
    this.#fileLog.close();
  }
}
