/**
 * What the dashboard's serving process checks for the page, with the same
 * code as the SDK and `cloister verify`: each registered enclave's evidence
 * under the task role of the named policy manifest (checkEnclave), and a
 * completed task's provenance record (verifyProvenanceRecord: signature,
 * attestation, output digest, on-chain anchor). It reads the chain over RPC
 * and IPFS over the Kubo API like any client; it holds no key.
 */
import { parseEventLogs, type Address } from "viem";
import { getBlockNumber, getLogs } from "viem/actions";
import { manifestDigest, policyForRole, TASK_ROLE, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import { enclaveRegistryAbi } from "../chain/abi/EnclaveRegistry.ts";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import type { ReaderClient } from "../chain/clients.ts";
import { checkEnclave } from "../sdk/enclaves.ts";
import { verifyProvenanceRecord, type ProvenanceCheck } from "../sdk/verify-provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";

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
}

export class DashboardChecks {
  readonly policy: Policy;
  readonly policyName: string;
  readonly policyDigest: string;
  readonly #o: DashboardChecksOptions;
  /** The enclave listing of one block, shared by the requests of that block. */
  #enclaves: { block: bigint; verdicts: Promise<EnclaveVerdictJson[]> } | undefined;
  /** A verified record stays verified: its envelope, evidence and anchor do not change. */
  readonly #provenance = new Map<bigint, ProvenanceVerdictJson>();

  constructor(o: DashboardChecksOptions) {
    this.#o = o;
    this.policy = policyForRole(o.manifest, TASK_ROLE);
    this.policyName = o.manifest.name ?? "unnamed policy manifest";
    this.policyDigest = manifestDigest(o.manifest);
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
    const cached = this.#provenance.get(taskId);
    if (cached) return cached;
    const { reader, market, fromBlock, store } = this.#o;
    const logs = await getLogs(reader, { address: market, fromBlock, toBlock: "latest" });
    const completed = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskCompleted" }).find((l) => l.args.taskId === taskId);
    if (!completed) return undefined;
    const verdict = await verifyProvenanceRecord({
      envelope: await store.get(completed.args.provenanceCid),
      policy: this.policy,
      evidence: (cid) => store.get(cid),
      output: await store.get(completed.args.outputCid),
      chain: { reader, market, fromBlock },
    });
    const p = verdict.statement?.predicate;
    const json: ProvenanceVerdictJson = {
      ok: verdict.ok,
      policy: this.policyName,
      checks: verdict.checks,
      ...(p
        ? { statement: { job: { kind: p.job.kind, id: String(p.job.id) }, enclave: { signer: p.enclave.signer, simulated: p.enclave.simulated, measurement: p.enclave.measurement, evidenceCid: p.enclave.evidenceCid }, startedOn: String(p.startedOn), finishedOn: String(p.finishedOn) } }
        : {}),
    };
    if (json.ok) this.#provenance.set(taskId, json);
    return json;
  }
}
