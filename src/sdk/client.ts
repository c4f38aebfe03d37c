/**
 * The requester's API: find enclaves it can trust, run a confidential task on
 * them, and get back output it has verified end to end.
 */
import { zeroAddress, type Address, type Hex } from "viem";
import { policyForRole, TASK_ROLE, taskLimitsUnder, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { TaskLimits } from "../protocol/task.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { coalescePuts } from "../storage/coalescing-store.ts";
import { groupCommit } from "../util/group-commit.ts";
import { verifyAndDecrypt, type TaskResult } from "./await-result.ts";
import { sharedCompletionReads, type CompletionReads } from "./completion-reads.ts";
import { OfferBook } from "./offer-book.ts";
import { CompletionWatcher } from "./completion-watcher.ts";
import type { HeadSource } from "../chain/new-heads.ts";
import { EnclaveDirectory, requirePinnedCode, type EnclaveListing, type VerifiedEnclave } from "./enclaves.ts";
import { TaskVerificationError } from "./errors.ts";
import { prepareTask, publishTask, submitPublishedBatch, type PublishedTask, type SubmittedTask, type TaskTerms } from "./submit.ts";
import type { Deployment } from "../chain/deployment.ts";

export interface CloisterClientOptions {
  /** Client whose account is the requester (pays, and is refunded). */
  writer: WriterClient;
  deployment: Deployment;
  store: BlobStore;
  /**
   * The requester's own policy manifest: enclaves are verified against its `task` role, not against the
   * registry's word, and tasks run under its task limits (defaults filled in, maxima refused before sending).
   */
  manifest: Manifest;
  /** How often the client polls the chain for its tasks' completions (default 20 ms, only while tasks wait). */
  pollIntervalMs?: number;
  /** New heads by push (chain/new-heads.ts): completions are looked for on each, polling stays the fallback. */
  newHeads?: HeadSource;
}

export type TaskProgress =
  | { step: "enclaves-verified"; verified: VerifiedEnclave[]; rejected: EnclaveListing["rejected"] }
  | { step: "submitted"; task: SubmittedTask }
  | { step: "completed"; taskId: bigint; enclave: Address }
  | { step: "verified"; result: TaskResult };

export interface RunTaskOptions {
  program: Uint8Array;
  input: Uint8Array;
  /**
   * Escrowed maximum price in the token's units; the node is paid its offer price and the rest comes back.
   * Default: the highest current offer among the candidates (read from the market, kept for 5 s).
   */
  maxPrice?: bigint;
  /** Payment token; the zero address (default) is native currency, else an ERC-20 (approved automatically). */
  token?: Address;
  /** Time category id (default 0, XS: 5 minutes); an attempt's deadline is its time reference x deadlineMultiple. */
  category?: number;
  /** Default 1. */
  deadlineMultiple?: number;
  /** Nodes that may try in turn before the escrow is refunded (default 3). */
  maxAttempts?: number;
  /** Other requirements and the accepted TEE types; see TaskTerms. */
  terms?: Partial<Pick<TaskTerms, "cpuMillis" | "memoryMb" | "duration" | "teeTypes">>;
  /** At most this many candidate enclaves get a wrapped key (default 3); only enclaves with an offer in the token qualify. */
  maxCandidates?: number;
  limits?: Partial<TaskLimits>;
  timeoutMs?: number;
  onProgress?: (progress: TaskProgress) => void;
}

/**
 * A requester's client. Tasks may run concurrently: the client keeps the
 * enclaves it has verified (see EnclaveDirectory), waits for all its tasks'
 * completions with one poller, uploads a program once however many tasks
 * run it, and submits its tasks one transaction at a time (they come from
 * one account): the tasks that become ready while one submit is in flight
 * go out together in the next (group commit), as do their uploads.
 */
export class CloisterClient {
  readonly #o: CloisterClientOptions;
  readonly #enclaves: EnclaveDirectory;
  readonly #completions: CompletionWatcher;
  readonly #store: BlobStore;
  readonly #offers: OfferBook;
  readonly #uploadedPrograms = new Map<Hex, string>();
  /** A batch completes many of this client's tasks in one transaction: its reads are shared. */
  readonly #completionReads: CompletionReads;
  /** One submit transaction at a time, so an ERC-20 allowance check and its approve never interleave with another's. */
  readonly #submit: (task: PublishedTask) => Promise<SubmittedTask>;
  /** The manifest's task-role policy. */
  readonly #policy: Policy;

  constructor(options: CloisterClientOptions) {
    this.#o = options;
    const { writer, deployment, store } = options;
    const policy = policyForRole(options.manifest, TASK_ROLE);
    this.#policy = policy;
    this.#store = coalescePuts(store);
    this.#offers = new OfferBook({ reader: writer, market: deployment.market });
    this.#completionReads = sharedCompletionReads(writer, deployment.registry);
    const submitCtx = { writer, market: deployment.market };
    this.#submit = groupCommit({ maxBatch: 64, send: (tasks: PublishedTask[]) => submitPublishedBatch(submitCtx, tasks) });
    this.#enclaves = new EnclaveDirectory({ reader: writer, registry: deployment.registry, fromBlock: deployment.deployBlock, store, policy });
    this.#completions = new CompletionWatcher({ reader: writer, market: deployment.market, pollIntervalMs: options.pollIntervalMs, heads: options.newHeads });
  }

  /** The registered enclaves that pass this client's policy, and why the others do not. */
  listEnclaves(): Promise<EnclaveListing> {
    return this.#enclaves.listing();
  }

  async runTask(options: RunTaskOptions): Promise<TaskResult> {
    const { writer, deployment, manifest } = this.#o;
    const policy = this.#policy;
    requirePinnedCode(policy);
    const limits = taskLimitsUnder(manifest, options.limits);
    const store = this.#store;
    const listing = await this.listEnclaves();
    options.onProgress?.({ step: "enclaves-verified", verified: listing.verified, rejected: listing.rejected });
    if (listing.verified.length === 0) {
      const why = listing.rejected.map((r) => `${r.signer}: ${r.reason}`).join("; ");
      throw new TaskVerificationError("NO_VERIFIED_ENCLAVE", `no registered enclave passes this client's attestation policy${why ? ` (${why})` : ""}; start a node or adjust the policy`);
    }
    // Only enclaves with an offer in the task's token can accept it: the others get no wrapped key.
    const token = options.token ?? zeroAddress;
    const offers = await Promise.all(listing.verified.map(async (enclave) => ({ enclave, offer: await this.#offers.offer(enclave.signer, token) })));
    const offered = offers.filter((o) => o.offer !== undefined).slice(0, options.maxCandidates ?? 3);
    if (offered.length === 0) {
      throw new TaskVerificationError("NO_OFFER", `none of the ${listing.verified.length} verified enclaves offers to run tasks paid in ${token === zeroAddress ? "native currency" : token}; pay in a token they offer, or have an operator post an offer`);
    }
    const candidates = offered.map((o) => o.enclave);
    // By default the escrow is what the dearest candidate asks, so nothing needs refunding at completion.
    const askedPrice = offered.reduce((max, o) => (o.offer!.price > max ? o.offer!.price : max), 1n);
    const ctx = { writer, market: deployment.market, chainId: BigInt(deployment.chainId), store };
    const prepared = await prepareTask(ctx, { program: options.program, input: options.input, candidates, limits });
    const { category, deadlineMultiple, maxAttempts } = options;
    const maxPrice = options.maxPrice ?? askedPrice;
    const terms = Object.fromEntries(Object.entries({ maxPrice, token, category, deadlineMultiple, maxAttempts }).filter(([, v]) => v !== undefined));
    const published = await publishTask({ ...ctx, uploadedPrograms: this.#uploadedPrograms, inlineInputBytes: manifest.limits.task.inlineInputBytes }, prepared, { ...options.terms, ...terms });
    const task = await this.#submit(published);
    options.onProgress?.({ step: "submitted", task });
    const event = await this.#completions.wait(task.taskId, task.submitBlock, options.timeoutMs ?? 60_000);
    options.onProgress?.({ step: "completed", taskId: task.taskId, enclave: event.enclave });
    const awaitCtx = { reader: writer, market: deployment.market, registry: deployment.registry, store, reads: this.#completionReads, trust: { policy, fromBlock: deployment.deployBlock } };
    const result = await verifyAndDecrypt(awaitCtx, task, candidates, event);
    options.onProgress?.({ step: "verified", result });
    return result;
  }
}
