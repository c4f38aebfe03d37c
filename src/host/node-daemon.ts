/**
 * The node daemon (untrusted host): gets its enclave attested and registered,
 * then watches the market for tasks its enclave may run and relays them.
 */
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { encodeEvidence } from "../attestation/evidence-codec.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { Checkpoint } from "./checkpoint.ts";
import { createLimiter } from "./limiter.ts";
import { fileHostLog, type HostEvent, type HostLog } from "./log.ts";
import { handleTask } from "./task-handler.ts";
import { watchSubmittedTasks } from "./task-watcher.ts";

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
  /** Tasks run at once (default 4). */
  concurrency?: number;
  onEvent?: (event: HostEvent) => void;
}

export class NodeDaemon {
  readonly #options: NodeDaemonOptions;
  readonly log: HostLog;
  #watcher: { stop(): Promise<void> } | undefined;
  #evidenceCid: string | undefined;

  constructor(options: NodeDaemonOptions) {
    this.#options = options;
    this.log = fileHostLog(join(options.dataDir, "host.log"), options.onEvent);
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
    const { evidence } = await enclave.attest({ freshness: nonce });
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
    this.#startWatching();
  }

  #startWatching(): void {
    const { writer, deployment, store, enclave, dataDir } = this.#options;
    const checkpoint = new Checkpoint(join(dataDir, "checkpoint.json"), deployment.deployBlock - 1n);
    const limit = createLimiter(this.#options.concurrency ?? 4);
    const ctx = { writer, market: deployment.market, chainId: BigInt(deployment.chainId), store, enclave, evidenceCid: this.#evidenceCid!, log: this.log, sendSerially: createLimiter(1) };
    this.#watcher = watchSubmittedTasks({
      reader: writer,
      market: deployment.market,
      checkpoint,
      pollIntervalMs: this.#options.pollIntervalMs ?? 100,
      handle: (task) => limit(() => handleTask(ctx, task)),
      onError: (error) => this.log.emit({ type: "task-failed", taskId: "-", code: (error as { code?: string }).code ?? "WATCHER", message: (error as Error).message }),
    });
  }

  async stop(): Promise<void> {
    await this.#watcher?.stop();
    await this.#options.enclave.close();
  }
}
