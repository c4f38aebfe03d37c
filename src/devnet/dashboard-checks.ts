/**
 * What the dashboard's serving process checks for the page, with the same
 * code as the SDK and `cloister verify`: each registered enclave's evidence
 * under the task role of the named policy manifest (checkEnclave), and the
 * provenance of every job kind: a completed task's record
 * (verifyProvenanceRecord: signature, attestation, output digest, on-chain
 * anchor), a pipeline run (verifyRunById), a clean-room run
 * (verifyRecordedRun) and a grant use (verifyGrantUse). It reads the chain
 * over RPC and IPFS over the Kubo API like any client; it holds no key.
 */
import { parseEventLogs, type Address } from "viem";
import { getBlockNumber, getLogs } from "viem/actions";
import { manifestDigest, policyForRole, TASK_ROLE, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import { enclaveRegistryAbi } from "../chain/abi/EnclaveRegistry.ts";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { ReaderClient } from "../chain/clients.ts";
import { readPipelineRuns } from "../chain/actions/read-pipeline.ts";
import type { ProvenanceStatement } from "../protocol/provenance.ts";
import { verifyRunOnChain } from "../sdk/collab/verify-run.ts";
import { checkEnclave } from "../sdk/enclaves.ts";
import { verifyGrantUse } from "../sdk/grants.ts";
import { verifyRunById } from "../sdk/pipeline-runs.ts";
import { verifyProvenanceRecord, type ProvenanceCheck } from "../sdk/verify-provenance.ts";
import { isStorageError, type BlobStore } from "../storage/blob-store.ts";
import { rawCidOfDigest } from "../storage/raw-cid.ts";
import { DevnetError } from "./errors.ts";

export interface EnclaveVerdictJson {
  signer: Address;
  evidenceCid: string;
  verified: boolean;
  reason?: string;
  claims?: { teeType: string; measurement: string; simulated: boolean; tcbStatus?: string; debug: boolean };
}

export interface ProvenanceVerdictJson {
  ok: boolean;
  policy: string;
  checks: ProvenanceCheck[];
  statement?: { job: { kind: string; id: string }; enclave: { signer: string; simulated: boolean; measurement: string; evidenceCid: string }; startedOn: string; finishedOn: string };
}

export interface DashboardChecksOptions {
  reader: ReaderClient;
  store: BlobStore;
  registry: Address;
  market: Address;
  fromBlock: bigint;
  manifest: Manifest;
  /** The optional contracts whose runs and uses it verifies. */
  pipelines?: Address;
  collaborations?: Address;
  grants?: Address;
  /** How long a blob may take to come from IPFS; a record that does not come fails its check (default 5 s). */
  blobTimeoutMs?: number;
}

/** The job kinds besides tasks whose provenance the dashboard verifies, with the contract each needs. */
export const RUN_KINDS = { pipeline: "Pipelines", collaboration: "Collaborations", grant: "Grants" } as const;
export type RunKind = keyof typeof RUN_KINDS;

export class DashboardChecks {
  readonly policy: Policy;
  readonly policyName: string;
  readonly policyDigest: string;
  readonly #o: DashboardChecksOptions;
  /** The enclave listing of one block, shared by the requests of that block. */
  #enclaves: { block: bigint; verdicts: Promise<EnclaveVerdictJson[]> } | undefined;
  /** A verified record stays verified: its envelope, evidence and anchor do not change. Keyed "task:<id>", "<kind>:<id>:<run>". */
  readonly #provenance = new Map<string, ProvenanceVerdictJson>();
  /** Reads that give up: a record missing from IPFS is a failed check, not a request that hangs. */
  readonly #store: BlobStore;

  constructor(o: DashboardChecksOptions) {
    this.#o = o;
    this.policy = policyForRole(o.manifest, TASK_ROLE);
    this.policyName = o.manifest.name ?? "unnamed policy manifest";
    this.policyDigest = manifestDigest(o.manifest);
    this.#store = boundedStore(o.store, o.blobTimeoutMs ?? 5_000);
  }

  async enclaves(): Promise<EnclaveVerdictJson[]> {
    const block = await getBlockNumber(this.#o.reader, { cacheTime: 0 });
    if (this.#enclaves?.block !== block) {
      const verdicts = this.#listEnclaves(block);
      this.#enclaves = { block, verdicts };
      verdicts.catch(() => (this.#enclaves = undefined));
    }
    return this.#enclaves.verdicts;
  }

  async #listEnclaves(block: bigint): Promise<EnclaveVerdictJson[]> {
    const { reader, registry, fromBlock, store } = this.#o;
    const logs = await getLogs(reader, { address: registry, fromBlock, toBlock: block });
    const latest = new Map<Address, string>();
    for (const log of parseEventLogs({ abi: enclaveRegistryAbi, logs, eventName: "EnclaveRegistered" })) latest.set(log.args.enclave, log.args.evidenceCid);
    return Promise.all(
      [...latest].map(async ([signer, evidenceCid]): Promise<EnclaveVerdictJson> => {
        const outcome = await checkEnclave({ reader, registry, store, policy: this.policy }, signer, evidenceCid);
        if ("reason" in outcome) return { signer, evidenceCid, verified: false, reason: outcome.reason };
        const c = outcome.claims;
        return { signer, evidenceCid, verified: true, claims: { teeType: c.teeType, measurement: c.measurement, simulated: c.simulated, debug: c.debug, ...(c.tcbStatus ? { tcbStatus: c.tcbStatus } : {}) } };
      }),
    );
  }

  /** The provenance verdict of a completed task; undefined when the market has no completion for it. */
  async provenance(taskId: bigint): Promise<ProvenanceVerdictJson | undefined> {
    return this.#cached(`task:${taskId}`, async () => {
      const { reader, market, fromBlock } = this.#o;
      const store = this.#store;
      const logs = await getLogs(reader, { address: market, fromBlock, toBlock: "latest" });
      const completed = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskCompleted" }).find((l) => l.args.taskId === taskId);
      if (!completed) return undefined;
      const [envelope, output] = await Promise.all([this.#record(completed.args.provenanceCid), this.#record(completed.args.outputCid, "output")]);
      if (!(envelope instanceof Uint8Array)) return envelope;
      if (!(output instanceof Uint8Array)) return output;
      return verifyProvenanceRecord({ envelope, policy: this.policy, evidence: (cid) => store.get(cid), output, chain: { reader, market, fromBlock } });
    });
  }

  /** Whether the deployment names the contract of `kind`'s runs. */
  verifies(kind: RunKind): boolean {
    return this.#contract(kind) !== undefined;
  }

  /**
   * The provenance verdict of run `run` (1 for the first) of a pipeline or collaboration, or use `run` of a grant,
   * with the checks `cloister verify` runs; undefined when the chain records no such run or use.
   */
  async run(kind: RunKind, id: bigint, run: number): Promise<ProvenanceVerdictJson | undefined> {
    const contract = this.#contract(kind);
    if (!contract) throw new DevnetError(`this dashboard's deployment names no ${RUN_KINDS[kind]} contract: ask verifies("${kind}") first`);
    return this.#cached(`${kind}:${id}:${run}`, () => (kind === "pipeline" ? this.#pipelineRun(contract, id, run) : kind === "collaboration" ? this.#collabRun(contract, id, run) : this.#grantUse(contract, id, run)));
  }

  #contract(kind: RunKind): Address | undefined {
    return kind === "pipeline" ? this.#o.pipelines : kind === "collaboration" ? this.#o.collaborations : this.#o.grants;
  }

  async #pipelineRun(contract: Address, pipelineId: bigint, n: number): Promise<Verdict | undefined> {
    const { reader, registry, fromBlock } = this.#o;
    const anchored = (await readPipelineRuns(reader, contract, pipelineId, fromBlock)).find((r) => r.run === n);
    if (!anchored) return undefined;
    try {
      return await verifyRunById({ reader, store: this.#store, contract, registry, policy: this.policy, runId: anchored.runId, pipelineId });
    } catch (error) {
      // verifyRunById reports each failed check; it throws when the record cannot be read (or the chain fails).
      if (!isStorageError(error) && !(error instanceof DOMException)) throw error;
      return unreadable(rawCidOfDigest(anchored.provenanceDigest), error);
    }
  }

  #collabRun(collaborations: Address, collaborationId: bigint, runId: number): Promise<Verdict | undefined> {
    const { reader, registry, fromBlock } = this.#o;
    return verifyRunOnChain({ reader, store: this.#store, deployment: { registry, collaborations }, policy: this.policy, collaborationId, runId, fromBlock, timeoutMs: this.#o.blobTimeoutMs });
  }

  #grantUse(grants: Address, grantId: bigint, use: number): Promise<Verdict | undefined> {
    const { reader, market, fromBlock } = this.#o;
    return verifyGrantUse({ reader, store: this.#store, chain: { market, grants, fromBlock }, policy: this.policy, grantId, use, timeoutMs: this.#o.blobTimeoutMs });
  }

  /** A blob the chain names, or the verdict that it cannot be read. */
  async #record(cid: string, what = "provenance record"): Promise<Uint8Array | Verdict> {
    return this.#store.get(cid, { maxBytes: 16 << 20 }).catch((error: unknown) => unreadable(cid, error, what));
  }

  async #cached(key: string, check: () => Promise<Verdict | undefined>): Promise<ProvenanceVerdictJson | undefined> {
    const cached = this.#provenance.get(key);
    if (cached) return cached;
    const verdict = await check();
    if (!verdict) return undefined;
    const json = jsonOf(verdict, this.policyName);
    if (json.ok) this.#provenance.set(key, json);
    return json;
  }
}

type Verdict = { ok: boolean; checks: ProvenanceCheck[]; statement?: ProvenanceStatement };

function jsonOf(verdict: Verdict, policy: string): ProvenanceVerdictJson {
  const p = verdict.statement?.predicate;
  return {
    ok: verdict.ok,
    policy,
    checks: verdict.checks,
    ...(p
      ? { statement: { job: { kind: p.job.kind, id: String(p.job.id) }, enclave: { signer: p.enclave.signer, simulated: p.enclave.simulated, measurement: p.enclave.measurement, evidenceCid: p.enclave.evidenceCid }, startedOn: String(p.startedOn), finishedOn: String(p.finishedOn) } }
      : {}),
  };
}

function unreadable(cid: string, error: unknown, what = "provenance record"): Verdict {
  return { ok: false, checks: [{ name: "record", ok: false, detail: `the ${what} ${cid} the chain names is not readable from IPFS: ${(error as Error).message}` }] };
}

/** `store`, with every read given up after `ms` unless the caller passes its own signal. */
function boundedStore(store: BlobStore, ms: number): BlobStore {
  return {
    put: (bytes) => store.put(bytes),
    putMany: (blobs) => store.putMany(blobs),
    has: (cid) => store.has(cid),
    close: () => store.close(),
    get: (cid, options) => store.get(cid, { ...options, signal: options?.signal ?? AbortSignal.timeout(ms) }),
  };
}
