/**
 * The node's side of clean-room runs requested on a network (docs/cleanroom.md, "Running on a network").
 * Every poll it reads the Collaborations events: which party assigned which enclave (PartyNodeAssigned),
 * which runs were requested (RunRequested), which nodes joined them (RunJoined). For a request of a
 * collaboration where this node's enclave is a party's assigned node, it runs that party's job:
 *
 * - a partner's node attests its enclave (freshness: the request's block hash), publishes its peer record
 *   (joinRun), waits for the compute node's record with its listener's address, and runs `collab-partner`
 *   with the descriptors the party sealed to its enclave (the run kit);
 * - the compute party's node waits for every partner's record, runs `collab-compute` (the recipient's key
 *   from the recipient party's kit), publishes its own record once its relay reports the listener, then
 *   records the run (recordRun) and publishes the provenance and the sealed result;
 * - the recipient party's node keeps the sealed result (`collab-results/` in its data dir) once recorded.
 *
 * One run at a time: the compute node learns its listener's address from its relay's next report, so two
 * runs at once could hand a partner the other run's address. A request whose run is recorded already, or
 * whose approvals no longer all stand, is skipped.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAddressEqual, type Address } from "viem";
import { joinRun, readRunEvents, reportRefusal, type NodeAssignment, type RunJoin, type RunRequest } from "../chain/actions/collab-run-requests.ts";
import { readApprovals } from "../chain/actions/read-approvals.ts";
import { readCollaboration } from "../chain/actions/read-collaboration.ts";
import { readCollaborationTerms } from "../chain/actions/read-collaboration-terms.ts";
import { readRuns } from "../chain/actions/read-runs.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import { EnclaveError } from "../enclave/errors.ts";
import type { CollabComputeParams, CollabJobCollaboration } from "../enclave/jobs/collab-params.ts";
import { isRefusalCode } from "../protocol/collab-refusal.ts";
import { COLLAB_PEER_FORMAT, collabKitSchema, collabPeerRecordSchema, decodeCollabDocument, encodeCollabDocument, type CollabKit, type CollabPeerRecord } from "../protocol/collab-kit.ts";
import type { CollaborationTerms } from "../protocol/collaboration.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { rawCidOfDigest } from "../storage/raw-cid.ts";
import { attestPeer, CollabHostError, computePredicate, peerOfRecord, recordAndPublish, releaseNote } from "./collab-peer.ts";
import type { HostEvent, HostLog } from "./log.ts";
import { startPollLoop, type PollLoop } from "./poll-loop.ts";
import type { RelayListening } from "./net-relay.ts";

export interface CollabDriverOptions {
  writer: WriterClient;
  contract: Address;
  store: BlobStore;
  enclave: EnclaveClient;
  /** Resolves with the address the node's relay reports for its enclave's next listener. */
  nextListener: () => Promise<RelayListening>;
  fromBlock: bigint;
  dataDir: string;
  log: HostLog;
  /** Default 500 ms. */
  pollIntervalMs?: number;
  /** How long a node waits for the other nodes' records of a run, and the compute enclave for the partners' rows (default 120 s). */
  peerTimeoutMs?: number;
}

/** The waiters for a relay's next listener report: feed `report` to the relay's onListening, hand `next` to the driver. */
export function listenerWaiters(): { report: (l: RelayListening) => void; next: () => Promise<RelayListening> } {
  const waiting: ((l: RelayListening) => void)[] = [];
  return { report: (l) => waiting.splice(0).forEach((w) => w(l)), next: () => new Promise((resolve) => waiting.push(resolve)) };
}

type CollabRunStep = Extract<HostEvent, { type: "collab-run" }>["step"];

/**
 * The typed code of a refusal a node publishes: its enclave's (COLLAB_REFUSED carries the job's code first:
 * "ROW_LEVEL_OUTPUT: …"; another gate code, e.g. ATTESTATION_FAILED, is its own) or its host's check of a kit
 * or peer record; undefined for what is no refusal (a timeout, the chain, IPFS).
 */
export function refusalCode(error: unknown): string | undefined {
  if (error instanceof EnclaveError) {
    const code = error.code === "COLLAB_REFUSED" ? /^([A-Z][A-Z0-9_]*):/.exec(error.message)?.[1] : error.code;
    return code !== undefined && isRefusalCode(code) ? code : undefined;
  }
  if (error instanceof CollabHostError && error.code === "COLLAB_PEER_INVALID") return error.code;
  return undefined;
}

const key = (id: bigint, runId?: number) => (runId === undefined ? id.toString() : `${id}:${runId}`);

export class CollabDriver {
  readonly #o: CollabDriverOptions;
  #from: bigint;
  /** Latest assignment per collaboration and party. */
  readonly #assigned = new Map<string, Map<number, NodeAssignment>>();
  readonly #joins = new Map<string, RunJoin[]>();
  readonly #pending: RunRequest[] = [];
  #running: Promise<void> = Promise.resolve();
  #loop: PollLoop | undefined;

  constructor(options: CollabDriverOptions) {
    this.#o = options;
    this.#from = options.fromBlock;
  }

  start(): void {
    this.#loop = startPollLoop(() => this.#poll(), { intervalMs: this.#o.pollIntervalMs ?? 500, onError: (error: unknown) => this.#o.log.emit({ type: "watcher-error", source: "chain-follower", code: (error as { code?: string }).code ?? "COLLAB_DRIVER", message: (error as Error).message }) });
  }

  async stop(): Promise<void> {
    await this.#loop?.stop();
    await this.#running;
  }

  get #stopped(): boolean {
    return this.#loop?.stopped ?? false;
  }

  async #poll(): Promise<void> {
    const head = await this.#o.writer.getBlockNumber({ cacheTime: 0 });
    if (head < this.#from) return;
    const events = await readRunEvents(this.#o.writer, this.#o.contract, { fromBlock: this.#from, toBlock: head });
    this.#from = head + 1n;
    for (const a of events.assignments) {
      const parties = this.#assigned.get(key(a.collaborationId)) ?? new Map<number, NodeAssignment>();
      parties.set(a.party, a);
      this.#assigned.set(key(a.collaborationId), parties);
    }
    for (const j of events.joins) this.#joins.set(key(j.collaborationId, j.runId), [...(this.#joins.get(key(j.collaborationId, j.runId)) ?? []), j]);
    for (const r of events.requests) {
      const mine = this.#myParty(r.collaborationId);
      if (mine === undefined) continue;
      this.#pending.push(r);
      // One run at a time, in request order.
      this.#running = this.#running.then(() => this.#handle(this.#pending.shift()!, mine));
    }
  }

  /** The party this node's enclave is the assigned node of in `collaborationId`, if any. */
  #myParty(collaborationId: bigint): number | undefined {
    for (const [party, a] of this.#assigned.get(key(collaborationId)) ?? []) if (isAddressEqual(a.enclave, this.#o.enclave.identity.signer)) return party;
    return undefined;
  }

  async #handle(request: RunRequest, party: number): Promise<void> {
    if (this.#stopped) return;
    const { collaborationId, runId } = request;
    const base = { collaborationId: collaborationId.toString(), runId, party };
    try {
      await this.#run(request, party, (step, extra = {}) => this.#o.log.emit({ type: "collab-run", ...base, step, ...extra }));
    } catch (error) {
      const e = error as Error & { code?: string };
      this.#o.log.emit({ type: "collab-run-failed", ...base, code: e.code ?? "COLLAB_RUN_FAILED", message: e.message });
      await this.#reportRefusal(request, party, error);
    }
  }

  /**
   * Publishes the typed code of a refusal on chain (reportRefusal, the code only: its message stays in this log),
   * so the requester fails at once instead of at its timeout. A timeout or a chain failure is not a refusal: the
   * requester's own timeout names the parties that never joined.
   */
  async #reportRefusal(request: RunRequest, party: number, error: unknown): Promise<void> {
    const code = refusalCode(error);
    if (code === undefined || this.#stopped) return;
    const { collaborationId, runId } = request;
    try {
      const tx = await reportRefusal(this.#o.writer, this.#o.contract, collaborationId, runId, party, code);
      this.#o.log.emit({ type: "collab-run", collaborationId: collaborationId.toString(), runId, party, step: "refusal-reported", detail: code, transactionHash: tx.hash });
    } catch (e) {
      // The run was recorded or refused by the chain meanwhile (WrongRunId), or the chain is away: the log above has the reason.
      this.#o.log.emit({ type: "watcher-error", source: "chain-follower", code: (e as { code?: string }).code ?? "COLLAB_DRIVER", message: `reporting refusal ${code} of run ${runId}: ${(e as Error).message}` });
    }
  }

  async #run(request: RunRequest, party: number, step: (s: CollabRunStep, extra?: { detail?: string; transactionHash?: string }) => void): Promise<void> {
    const { writer, contract, store, enclave } = this.#o;
    const { collaborationId: id, runId } = request;
    const state = await readCollaboration(writer, contract, id);
    if (state.runs >= runId) return step("skipped", { detail: `run ${runId} is recorded already` });
    if (!state.approved) return step("skipped", { detail: "an approval was withdrawn since the request" });
    step("started");
    const { terms } = await readCollaborationTerms(writer, contract, id);
    const assignments = this.#assigned.get(key(id))!;
    const kit = await this.#kit(assignments.get(party)!);
    const relayed = await readApprovals(writer, contract, id, terms.parties.map((p) => p.account));
    const collaboration: CollabJobCollaboration = {
      chainId: BigInt(await writer.getChainId()),
      contract,
      id,
      terms,
      approvals: relayed.map((a) => ({ nonce: a?.nonce ?? 0n, signature: a?.signature ?? "0x" })),
      policy: kit.policy,
      partyNames: kit.partyNames,
    };
    const operator = writer.account.address;
    const { peer, evidenceCid } = await attestPeer(enclave, store, { party, operator, freshness: request.blockHash, manifest: kit.manifest, role: kit.role });
    const record: CollabPeerRecord = { format: COLLAB_PEER_FORMAT, party, evidenceCid, operator, freshness: request.blockHash, manifest: kit.manifest, role: kit.role };
    const datasets = Uint8Array.from(Buffer.from(kit.datasets, "base64"));
    const baseDir = kit.baseDir === undefined ? {} : { baseDir: kit.baseDir };

    if (party !== terms.computeParty) {
      const joined = await joinRun(writer, contract, id, runId, party, await store.put(encodeCollabDocument(record)));
      step("joined", { transactionHash: joined.hash });
      const [computeRecord] = await this.#awaitRecords(request, [terms.computeParty]);
      if (!computeRecord?.listen) throw new CollabHostError("COLLAB_PEER_INVALID", `the compute party's node published no listener address for run ${runId}`);
      await enclave.runJob({
        kind: "collab-partner",
        params: { collaboration, runId, party, datasets, compute: await peerOfRecord(store, computeRecord), computeAddress: computeRecord.listen, ...baseDir },
        evidenceCid,
      }, { timeoutMs: 300_000 });
      step("sent");
    } else {
      const partnerIndexes = terms.parties.map((_, i) => i).filter((i) => i !== party);
      const partners = await Promise.all((await this.#awaitRecords(request, partnerIndexes)).map((r) => peerOfRecord(store, r)));
      const listening = this.#o.nextListener();
      const computing = enclave.runJob({
        kind: "collab-compute",
        params: {
          collaboration,
          runId,
          epsilonSpentBefore: state.dpSpent,
          datasets,
          ...baseDir,
          partners,
          delivery: await this.#delivery(terms, kit, assignments),
          partnerTimeoutMs: kit.limits?.partnerTimeoutMs ?? this.#o.peerTimeoutMs ?? 120_000,
          ...(kit.limits?.memoryMb ? { memoryMb: kit.limits.memoryMb } : {}),
        },
        evidenceCid,
      }, { timeoutMs: 300_000 });
      computing.catch(() => {});
      const address = await Promise.race([listening, computing.then(() => undefined)]);
      if (!address) throw new CollabHostError("COLLAB_PEER_INVALID", "the compute enclave finished without listening for its partners");
      const joined = await joinRun(writer, contract, id, runId, party, await store.put(encodeCollabDocument({ ...record, listen: { host: address.host, port: address.port } })));
      step("joined", { transactionHash: joined.hash });
      const outcome = await computing;
      const predicate = computePredicate(outcome, peer.provenanceKey);
      step("computed", { detail: `${predicate.rowsDelivered} rows delivered, ${predicate.rowsSuppressed} suppressed` });
      const recorded = await recordAndPublish(writer, store, { contract, collaborationId: id, runId, signer: peer.signer, outcome, predicate, enclave });
      step("recorded", { transactionHash: recorded.transactionHash, detail: `provenance ${recorded.provenanceCid}, result ${recorded.resultCid}; ${releaseNote(recorded.releasedAt)}` });
    }
    if (terms.recipient === `party:${kit.partyNames[party]}`) step("result-stored", { detail: await this.#keepResult(id, runId) });
  }

  async #kit(assignment: NodeAssignment): Promise<CollabKit> {
    const kit = decodeCollabDocument(collabKitSchema, await this.#o.store.get(assignment.kitCid));
    if (kit.party !== assignment.party) throw new CollabHostError("COLLAB_PEER_INVALID", `the run kit ${assignment.kitCid} is party ${kit.party}'s, assigned for party ${assignment.party}`);
    return kit;
  }

  /** The other nodes' peer records for this request (joined after it), in `parties`' order; waits up to peerTimeoutMs. */
  async #awaitRecords(request: RunRequest, parties: number[]): Promise<CollabPeerRecord[]> {
    const deadline = Date.now() + (this.#o.peerTimeoutMs ?? 120_000);
    for (;;) {
      const joins = (this.#joins.get(key(request.collaborationId, request.runId)) ?? []).filter((j) => j.blockNumber >= request.blockNumber);
      const latest = parties.map((p) => joins.filter((j) => j.party === p).at(-1));
      if (latest.every((j) => j !== undefined)) {
        return Promise.all(latest.map(async (j) => {
          const record = decodeCollabDocument(collabPeerRecordSchema, await this.#o.store.get(j!.peerCid));
          if (record.party !== j!.party) throw new CollabHostError("COLLAB_PEER_INVALID", `the peer record ${j!.peerCid} is party ${record.party}'s, joined for party ${j!.party}`);
          return record;
        }));
      }
      if (this.#stopped || Date.now() > deadline) {
        const missing = parties.filter((_, i) => latest[i] === undefined);
        throw new CollabHostError("COLLAB_RUN_TIMEOUT", `run ${request.runId} of collaboration ${request.collaborationId}: no peer record from the node of part${missing.length > 1 ? "ies" : "y"} ${missing.join(", ")} after ${this.#o.peerTimeoutMs ?? 120_000} ms; is that party's node running (cloister node) and its assignment current?`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.#o.pollIntervalMs ?? 500));
    }
  }

  /** Where the compute enclave delivers: the recipient party's key (from its kit), an endpoint, or a table sealed to this enclave. */
  async #delivery(terms: CollaborationTerms, kit: CollabKit, assignments: Map<number, NodeAssignment>): Promise<CollabComputeParams["delivery"]> {
    if (terms.recipient.startsWith("https:")) return { kind: "https" };
    if (terms.recipient.startsWith("postgres:")) {
      if (!kit.delivery) throw new CollabHostError("COLLAB_PEER_INVALID", "the recipient is a table and the compute party's run kit carries no sealed url for it");
      return { kind: "postgres", sealed: Uint8Array.from(Buffer.from(kit.delivery, "base64")) };
    }
    const recipient = kit.partyNames.indexOf(terms.recipient.slice("party:".length));
    const recipientKit = recipient === kit.party ? kit : await this.#kit(assignments.get(recipient)!);
    if (!recipientKit.recipientKey) throw new CollabHostError("COLLAB_PEER_INVALID", `the recipient party's run kit carries no public key to seal the result to`);
    return { kind: "party", key: recipientKit.recipientKey };
  }

  /** Waits for the run on chain and keeps its sealed result (found on IPFS by its recorded digest) in the data dir. */
  async #keepResult(id: bigint, runId: number): Promise<string> {
    const deadline = Date.now() + (this.#o.peerTimeoutMs ?? 120_000);
    for (;;) {
      const run = (await readRuns(this.#o.writer, this.#o.contract, id, this.#o.fromBlock)).find((r) => r.runId === runId);
      if (run) {
        const dir = join(this.#o.dataDir, "collab-results");
        await mkdir(dir, { recursive: true });
        const path = join(dir, `${id.toString(16).slice(0, 16)}-run${runId}.sealed`);
        await writeFile(path, await this.#o.store.get(rawCidOfDigest(run.resultDigest)));
        return path;
      }
      if (this.#stopped || Date.now() > deadline) throw new CollabHostError("COLLAB_RUN_TIMEOUT", `run ${runId} of collaboration ${id} was not recorded on chain in time; the compute party's node's host.log says why`);
      await new Promise((resolve) => setTimeout(resolve, this.#o.pollIntervalMs ?? 500));
    }
  }
}
