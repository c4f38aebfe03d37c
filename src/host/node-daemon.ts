/**
 * The node daemon (untrusted host): gets its enclave attested and registered,
 * posts its offers,
 * then watches the market for tasks its enclave may run and relays them, and
 * reopens the attempts other enclaves let expire on those tasks (reopen-keeper.ts).
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { zeroAddress, type Address, type Hex } from "viem";
import { encodeEvidence } from "../attestation/evidence-codec.ts";
import { postOffer, type PostOfferParams } from "../chain/actions/offers.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { cacheGets } from "../storage/cached-gets.ts";
import { coalescePuts } from "../storage/coalescing-store.ts";
import { Checkpoint } from "./checkpoint.ts";
import { startNodeHttpServer, type NodeHealth, type NodeHttpServer } from "./http-server.ts";
import { createLimiter } from "../util/limiter.ts";
import { fileHostLog, type HostEvent, type HostLog } from "./log.ts";
import { meteredLog, NodeMetrics } from "./metrics.ts";
import { startReopenKeeper } from "./reopen-keeper.ts";
import { isTransientError } from "./retry.ts";
import { nodeMarketBatches } from "./market-batches.ts";
import { handleTask } from "./task-handler.ts";
import { watchSubmittedTasks } from "./task-watcher.ts";
import type { HeadSource } from "../chain/new-heads.ts";

/** How a node reaches the attestation service (in process or over HTTP). */
export interface AttestationServiceClient {
  challenge(): Promise<Hex> | Hex;
  register(request: { signer: Address; hpkePublicKey: Hex; operator: Address; evidenceCid: string; nonce: Hex }): Promise<{ expiry: bigint; transactionHash: Hex }>;
}

export interface NodeDaemonOptions {
  /** Client whose account is this node's operator. */
  writer: WriterClient;
  deployment: { chainId: number; market: Address; deployBlock: bigint };
  store: BlobStore;
  enclave: EnclaveClient;
  attestationService: AttestationServiceClient;
  /** Holds the checkpoint and host.log. */
  dataDir: string;
  pollIntervalMs?: number;
  /** New heads by push (chain/new-heads.ts): the task watcher crawls on each, and polls only as a safety net while they arrive. */
  newHeads?: HeadSource;
  /** Tasks in the fetch-run-publish step at once (default defaultRunConcurrency()). */
  concurrency?: number;
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
  /** Serve GET /healthz and GET /metrics (on 127.0.0.1 unless `host` says otherwise; port 0 picks one). */
  http?: { port: number; host?: string; crawlStaleAfterMs?: number };
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
  #watcher: { stop(): Promise<void> } | undefined;
  #keeper: { stop(): Promise<void> } | undefined;
  #evidenceCid: string | undefined;
  /** Aborts the handlers' retries on stop. */
  readonly #shutdown = new AbortController();
  #http: NodeHttpServer | undefined;
  #watchingSince: number | undefined;
  #lastCrawl: { at: number; block: bigint } | undefined;
  #lastCrawlError: string | undefined;
  #enclaveExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(options: NodeDaemonOptions) {
    this.#options = options;
    this.log = meteredLog(fileHostLog(join(options.dataDir, "host.log"), options.onEvent), this.metrics);
    void options.enclave.exited.then((exit) => {
      this.#enclaveExit = exit;
      this.metrics.enclaveUp.set(0);
    });
  }

  /** Where /healthz and /metrics are served, once started with `http`. */
  get httpUrl(): string | undefined {
    return this.#http?.url;
  }

  get signer(): Address {
    return this.#options.enclave.identity.signer;
  }

  /** Attests the enclave, registers it, and starts handling tasks. */
  async start(): Promise<void> {
    const { enclave, store, attestationService, writer } = this.#options;
    const id = enclave.identity;
    this.log.emit({ type: "enclave-ready", signer: id.signer, measurement: id.measurement, simulated: id.simulated, teeType: id.teeType });
    const nonce = await attestationService.challenge();
    const { evidence } = await enclave.attest({ freshness: nonce, operator: writer.account.address });
    const evidenceCid = await store.put(encodeEvidence(evidence));
    const registered = await attestationService.register({
      signer: id.signer,
      hpkePublicKey: id.hpkePublicKey,
      operator: writer.account.address,
      evidenceCid,
      nonce,
    });
    this.#evidenceCid = evidenceCid;
    this.log.emit({ type: "enclave-registered", signer: id.signer, evidenceCid, expiry: registered.expiry.toString(), transactionHash: registered.transactionHash });
    for (const offer of this.#options.offers ?? [defaultNodeOffer]) {
      const posted = await postOffer(writer, this.#options.deployment.market, { ...offer, enclave: id.signer });
      this.log.emit({ type: "offer-posted", signer: id.signer, token: offer.token, price: offer.price.toString(), transactionHash: posted.hash });
    }
    this.#startWatching(await writer.getBlockNumber({ cacheTime: 0 }));
    await this.#startHttpServer();
  }

  #startWatching(startBlock: bigint): void {
    const { writer, deployment, store, enclave, dataDir } = this.#options;
    const checkpoint = new Checkpoint(join(dataDir, "checkpoint.json"), deployment.deployBlock - 1n);
    const runSlot = createLimiter(this.#options.concurrency ?? defaultRunConcurrency());
    const admit = createLimiter(this.#options.maxTasksHeld ?? defaultMaxTasksHeld);
    const batches = nodeMarketBatches({ writer, market: deployment.market, enclave: enclave.identity.signer });
    const retry = { signal: this.#shutdown.signal, onRetry: () => this.metrics.rpcErrors.inc() };
    // The reopen keeper's sends; the task handlers' go through the writer's own send lane (send-transaction.ts).
    const sendSerially = createLimiter(1);
    const ctx = {
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
    };
    this.#watchingSince = Date.now();
    this.#watcher = watchSubmittedTasks({
      reader: writer,
      market: deployment.market,
      checkpoint,
      pollIntervalMs: this.#options.pollIntervalMs ?? 100,
      heads: this.#options.newHeads,
      handle: (task) => handleTask(ctx, task),
      onError: (error) => {
        if (isTransientError(error)) this.metrics.rpcErrors.inc();
        this.#lastCrawlError = (error as Error).message;
        this.log.emit({ type: "watcher-error", source: "task-watcher", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message });
      },
      onCrawled: (block) => {
        this.#lastCrawl = { at: Date.now(), block };
        this.metrics.checkpointBlock.set(Number(block));
      },
    });
    const keeper = this.#options.reopenKeeper;
    if (keeper === false) return;
    this.#keeper = startReopenKeeper({
      writer,
      market: deployment.market,
      enclave: enclave.identity.signer,
      statePath: join(dataDir, "reopen-keeper.json"),
      fromBlock: deployment.deployBlock,
      pollIntervalMs: keeper?.pollIntervalMs ?? 1_000,
      log: this.log,
      sendSerially,
      onError: (error) => {
        if (isTransientError(error)) this.metrics.rpcErrors.inc();
        this.log.emit({ type: "watcher-error", source: "reopen-keeper", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message });
      },
    });
  }

  async #startHttpServer(): Promise<void> {
    const http = this.#options.http;
    if (!http) return;
    this.#http = await startNodeHttpServer({ host: http.host ?? "127.0.0.1", port: http.port, health: () => this.health(), metrics: this.metrics });
  }

  /** What GET /healthz answers: unavailable once the enclave process has exited or the crawler has failed for too long. */
  health(): NodeHealth {
    const id = this.#options.enclave.identity;
    const now = Date.now();
    const staleAfterMs = this.#options.http?.crawlStaleAfterMs ?? defaultCrawlStaleAfterMs;
    const crawledAt = this.#lastCrawl?.at ?? this.#watchingSince;
    let reason: string | undefined;
    if (this.#enclaveExit) {
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
    };
  }

  async stop(): Promise<void> {
    this.#shutdown.abort(new Error("the node daemon is stopping"));
    await Promise.all([this.#watcher?.stop(), this.#keeper?.stop()]);
    await this.#http?.close();
    await this.#options.enclave.close();
  }
}
