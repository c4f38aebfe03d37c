/**
 * A clean-room collaboration driven from the parties' side: create the terms on chain, have each party sign
 * and relay its approval, and run it: the partner enclaves read their datasets and seal their rows to the
 * attested compute enclave, the compute enclave runs the approved SQL under the policy and seals the result to
 * the recipient, the compute party's node records the run on chain, and the recipient's node stores the sealed
 * result, which only the recipient's key opens. Then every check a verifier makes: the provenance signature,
 * the result's digest, the run on chain.
 *
 * The enclaves are each party's own (one node per party); this module only carries ciphertext, public keys,
 * evidence and signatures between them.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { getAddress, type Address, type Client, type Hex, type LocalAccount } from "viem";
import { manifestDigest, type Manifest } from "../../attestation/manifest/index.ts";
import { approveCollaboration } from "../../chain/actions/approve-collaboration.ts";
import { createCollaboration } from "../../chain/actions/create-collaboration.ts";
import { readApprovals } from "../../chain/actions/read-approvals.ts";
import { readCollaboration } from "../../chain/actions/read-collaboration.ts";
import { readPartyState } from "../../chain/actions/read-collaboration.ts";
import { readRuns } from "../../chain/actions/read-runs.ts";
import { onChainMeasurement } from "../../chain/actions/register-enclave.ts";
import type { WriterClient } from "../../chain/clients.ts";
import { toHex } from "../../crypto/bytes.ts";
import { generateHpkeKeyPair, type HpkeKeyPair } from "../../crypto/hpke.ts";
import type { JsonValue } from "../../crypto/canonical-json.ts";
import { sha256 } from "../../crypto/sha256.ts";
import type { JobOutcome } from "../../enclave/call-gate.ts";
import type { EnclaveClient } from "../../enclave/client.ts";
import type { CollabComputeParams, CollabPeer } from "../../enclave/jobs/collab-params.ts";
import { EnclaveError } from "../../enclave/errors.ts";
import {
  collabDatasetsDigest,
  collabDatasetsInfo,
  encodePartyDatasets,
  collabPolicyDigest,
  collabResultInfo,
  decodeCollabResult,
  openCollabBlob,
  recipientDescriptor,
  recipientKeyPin,
  collabDeliveryInfo,
  sealCollabBlob,
  type CollabBinding,
  type CollabPartyDatasets,
  type CollabResult,
} from "../../protocol/collab-run.ts";
import { approvalTypes, collaborationsDomain, epsilonToFixed, manifestRoleId, queryDigest, type CollaborationTerms } from "../../protocol/collaboration.ts";
import type { CollabComputePredicate, CollabPartnerPredicate } from "../../protocol/job-kinds.ts";
import { verifyProvenance } from "../../protocol/provenance.ts";
import type { BlobStore } from "../../storage/blob-store.ts";
import { attestPeer, computePredicate, recordAndPublish, releaseNote, type CollabReleasedAt } from "../../host/collab-peer.ts";
import { CollabRefusedError, CollabRunError, type CollabRefusalCode } from "./errors.ts";
import type { LoadedCollabFile } from "./file.ts";

/** One party's node: its approving account, its operator (sends its transactions), its enclave. */
export interface CollabPartyNode {
  name: string;
  /** Signs the party's EIP-712 approvals. */
  account: Pick<LocalAccount, "address" | "signTypedData">;
  /** The node operator's client: sends the party's transactions; its address is the operator the terms pin. */
  writer: WriterClient;
  enclave: EnclaveClient;
  /** The address the node's relay reports for its enclave's next listener (the compute party's node must have one). */
  nextListener?: () => Promise<{ host: string; port: number }>;
  /** Where the node keeps results delivered to it. */
  dataDir: string;
}

export interface CollabNetwork {
  chainId: bigint;
  contract: Address;
  reader: Client;
  store: BlobStore;
  /** The policy manifest the parties pin for every enclave, and the role in it. */
  manifest: Manifest;
  role: string;
}

export type CollabStep =
  | { step: "created"; collaborationId: bigint; gasUsed: bigint }
  | { step: "approved"; party: string; gasUsed: bigint }
  | { step: "partner-sealed"; party: string; datasets: CollabComputePredicate["datasets"]; provedAt?: CollabPartnerPredicate["provedAt"] }
  | { step: "computed"; rowsDelivered: number; rowsSuppressed: number; epsilonSpent: string }
  | { step: "recorded"; runId: number; gasUsed: bigint }
  | { step: "delivered"; party: string; path: string };

/** The terms the parties approve, from the file and each party's node (account, operator, enclave measurement). */
export function buildTerms(loaded: LoadedCollabFile, nodes: readonly CollabPartyNode[], net: CollabNetwork, recipientKey: Uint8Array): CollaborationTerms {
  const { file, policy } = loaded;
  return {
    parties: file.parties.map((p, i) => ({
      account: nodes[i]!.account.address,
      operator: nodes[i]!.writer.account.address,
      measurement: onChainMeasurement(`0x${nodes[i]!.enclave.identity.measurement}`),
      manifestDigest: manifestDigest(net.manifest),
      manifestRole: manifestRoleId(net.role),
      datasetsDigest: collabDatasetsDigest(p),
    })),
    computeParty: loaded.computeIndex,
    queryDigest: queryDigest(file.query),
    queryText: file.query,
    queryCid: "",
    policyDigest: collabPolicyDigest(file.policy as JsonValue),
    maxRuns: file.maxRuns ?? 10,
    dpBudget: policy.dp ? epsilonToFixed(policy.dp.budget) : 0n,
    recipient: "party" in file.recipient ? `party:${file.recipient.party}` : recipientDescriptor(file.recipient),
    recipientPin: "party" in file.recipient ? recipientKeyPin(recipientKey) : (`0x${file.recipient.pin.toLowerCase()}` as Hex),
    allowSimulated: file.allowSimulated ?? true,
  };
}

export async function createOnChain(net: Pick<CollabNetwork, "contract">, creator: WriterClient, terms: CollaborationTerms): Promise<{ collaborationId: bigint; gasUsed: bigint }> {
  const created = await createCollaboration(creator, net.contract, terms);
  return { collaborationId: created.collaborationId, gasUsed: created.gasUsed };
}

/** The party signs the Approval at its current nonce; its node relays it. */
export async function approveAsParty(net: Pick<CollabNetwork, "reader" | "contract" | "chainId">, node: Pick<CollabPartyNode, "account" | "writer">, collaborationId: bigint, terms: CollaborationTerms, termsHashValue: Hex): Promise<bigint> {
  const { nonce } = await readPartyState(net.reader, net.contract, collaborationId, node.account.address);
  const signature = await node.account.signTypedData({
    domain: collaborationsDomain(net.chainId, net.contract),
    types: approvalTypes,
    primaryType: "Approval",
    message: { collaborationId, termsHash: termsHashValue, queryDigest: terms.queryDigest, policyDigest: terms.policyDigest, nonce },
  });
  const tx = await approveCollaboration(node.writer, net.contract, { collaborationId, party: node.account.address, nonce, signature });
  return tx.gasUsed;
}

export interface CollabRunOutcome {
  collaborationId: bigint;
  runId: number;
  /** The delivered rows as the recipient party opened them; absent when a table or an endpoint received them. */
  result?: CollabResult;
  provenanceCid: string;
  resultCid: string;
  /** Where the recipient's node stored the sealed result, or the table or endpoint the enclave delivered to. */
  deliveredTo: string;
  checks: string[];
  recordGas: bigint;
  /** Where the compute enclave proved the run's record before it released the result; absent when it did not (no endpoints of the compute party). */
  releasedAt?: CollabReleasedAt;
}

/** The peer record the host introduces for `node`'s enclave: its keys, fresh evidence for its operator, the pinned manifest. */
function peerOf(net: CollabNetwork, node: CollabPartyNode, party: number): Promise<{ peer: CollabPeer; evidenceCid: string }> {
  const freshness = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return attestPeer(node.enclave, net.store, { party, operator: node.writer.account.address, freshness, manifest: JSON.stringify(net.manifest), role: net.role });
}

/** Turns an enclave's COLLAB_REFUSED ("CODE: message") into the typed refusal. */
function refusal(e: unknown, party: string): unknown {
  if (e instanceof EnclaveError && e.code === "COLLAB_REFUSED") {
    const m = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(e.message);
    if (m) return new CollabRefusedError(m[1] as CollabRefusalCode, `${party}'s enclave refused: ${m[2]}`, party, { cause: e });
  }
  return e;
}

export interface RunOptions {
  collaborationId: bigint;
  loaded: LoadedCollabFile;
  nodes: readonly CollabPartyNode[];
  terms: CollaborationTerms;
  termsHash: Hex;
  recipientKey: HpkeKeyPair;
  onStep?: (s: CollabStep) => void;
  /** How long the compute enclave waits for every partner's rows (120 s by default). */
  partnerTimeoutMs?: number;
  /** Overrides, for tests that play a misbehaving host: what the compute job is handed instead of the honest value. */
  tamper?: {
    impostor?: { party: number; enclave: EnclaveClient };
    recipientKey?: Uint8Array;
    recipientUrl?: string;
    terms?: CollaborationTerms;
    skipStateCheck?: boolean;
    approvals?: { nonce: bigint; signature: Hex }[];
    /** What the host seals to party `party`'s enclave instead of the party's own datasets (and chain endpoints). */
    sealedAs?: { party: number; datasets: CollabPartyDatasets };
    /** Sees the compute enclave's outcome before the host records it. */
    onComputed?: (outcome: JobOutcome) => void;
    /** The host does not record the run: it asks the compute enclave to release the result at once instead. */
    skipRecord?: boolean;
  };
}

/** A partner's refusals that say only that the compute enclave cut it off: the compute enclave's reason is the cause. */
const computeSideCodes: ReadonlySet<string> = new Set(["COLLAB_TRANSFER_INVALID", "NET_STREAM_CLOSED", "NET_CONNECT_FAILED", "NET_TLS_FAILED"]);

export async function runCollaboration(net: CollabNetwork, o: RunOptions): Promise<CollabRunOutcome> {
  const { collaborationId: id, loaded, nodes, terms } = o;
  const step = o.onStep ?? (() => {});
  const binding: CollabBinding = { chainId: net.chainId, contract: net.contract, collaborationId: id };
  // The peer records (fresh evidence from each enclave) and the sealed descriptors need nothing from the chain: made while it is read.
  const peering = Promise.all(nodes.map((n, i) => peerOf(net, n, i)));
  // Each party seals its own descriptors (credentials included) to its own enclave: its host carries ciphertext.
  const sealing = Promise.all(
    nodes.map((n, i) =>
      sealCollabBlob(hexBytes(n.enclave.identity.hpkePublicKey), collabDatasetsInfo(binding, i), encodePartyDatasets(o.tamper?.sealedAs?.party === i ? o.tamper.sealedAs.datasets : loaded.file.parties[i]!)),
    ),
  );
  peering.catch(() => {});
  sealing.catch(() => {});
  const [state, relayed] = await Promise.all([readCollaboration(net.reader, net.contract, id), readApprovals(net.reader, net.contract, id, terms.parties.map((p) => p.account))]);
  if (!state.exists) throw new CollabRunError("COLLAB_UNKNOWN", `no collaboration ${id} on contract ${net.contract}`);
  const missing = terms.parties.flatMap((_, i) => ((state.approvals >> i) & 1 ? [] : [loaded.file.parties[i]!.name]));
  if (!o.tamper?.skipStateCheck) {
    if (missing.length > 0) throw new CollabRunError("COLLAB_NOT_APPROVED", `collaboration ${id} is not approved by ${missing.join(", ")}: every party must approve (or approve again after withdrawing) before it runs`, { details: { missing } });
    if (state.runs >= state.maxRuns) throw new CollabRunError("COLLAB_MAX_RUNS", `collaboration ${id} has run ${state.runs} of its ${state.maxRuns} allowed times`);
  }
  const runId = state.runs + 1;
  const approvals = relayed.map((a, i) => a ?? { nonce: 0n, signature: "0x" as Hex, party: terms.parties[i]!.account });
  const jobTerms = o.tamper?.terms ?? terms;
  const collaboration = {
    chainId: net.chainId,
    contract: net.contract,
    id,
    terms: jobTerms,
    approvals: o.tamper?.approvals ?? approvals.map((a) => ({ nonce: a.nonce, signature: a.signature })),
    policy: JSON.stringify(loaded.file.policy),
    partyNames: loaded.file.parties.map((p) => p.name),
  };
  const computeIndex = terms.computeParty;
  const computeNode = nodes[computeIndex]!;
  const [peers, sealedDatasets] = await Promise.all([peering, sealing]);

  const partnerIndexes = nodes.map((_, i) => i).filter((i) => i !== computeIndex);
  // The compute job listens first; its host's relay reports the address, which the partners' hosts are given.
  if (!computeNode.nextListener) throw new CollabRunError("COLLAB_NOT_DEPLOYED", `${computeNode.name}'s node offers no inbound connections: the compute enclave cannot listen for its partners`);
  const listening = computeNode.nextListener();
  const computing = computeNode.enclave
    .runJob({
      kind: "collab-compute",
      params: {
        collaboration,
        runId,
        epsilonSpentBefore: state.dpSpent,
        datasets: sealedDatasets[computeIndex]!,
        baseDir: loaded.baseDir,
        partners: partnerIndexes.map((i) => peers[i]!.peer),
        delivery: await deliveryFor(loaded, computeNode, binding, o),
        ...((o.partnerTimeoutMs ?? loaded.file.limits?.partnerTimeoutMs) ? { partnerTimeoutMs: o.partnerTimeoutMs ?? loaded.file.limits!.partnerTimeoutMs! } : {}),
        ...(loaded.file.limits?.memoryMb ? { memoryMb: loaded.file.limits.memoryMb } : {}),
      },
      evidenceCid: peers[computeIndex]!.evidenceCid,
    })
    .catch((e: unknown) => {
      throw refusal(e, loaded.file.parties[computeIndex]!.name);
    });
  computing.catch(() => {});
  const address = await Promise.race([listening, computing.then(() => undefined)]);
  if (!address) throw new CollabRunError("COLLAB_VERIFY_FAILED", "the compute enclave finished without listening for its partners");
  const partnersDone = Promise.all(
    partnerIndexes.map(async (i) => {
      const name = loaded.file.parties[i]!.name;
      let partner: JobOutcome;
      // A misbehaving host (tests) hands party i's job to another enclave, with descriptors sealed to that one.
      const impostor = o.tamper?.impostor?.party === i ? o.tamper.impostor.enclave : undefined;
      try {
        const datasets = impostor
          ? await sealCollabBlob(hexBytes(impostor.identity.hpkePublicKey), collabDatasetsInfo(binding, i), encodePartyDatasets(loaded.file.parties[i]!))
          : sealedDatasets[i]!;
        partner = await (impostor ?? nodes[i]!.enclave).runJob({
          kind: "collab-partner",
          params: { collaboration, runId, party: i, datasets, compute: peers[computeIndex]!.peer, computeAddress: { host: address.host, port: address.port }, baseDir: loaded.baseDir },
          evidenceCid: peers[i]!.evidenceCid,
        });
      } catch (e) {
        throw refusal(e, name);
      }
      const statement = verifyProvenance(partner.provenance.bytes, hexBytes((impostor ?? nodes[i]!.enclave).identity.provenanceKey));
      const part = (statement.predicate as unknown as Record<string, CollabPartnerPredicate>)["collab-partner"]!;
      step({ step: "partner-sealed", party: name, datasets: part.datasets, ...(part.provedAt ? { provedAt: part.provedAt } : {}) });
    }),
  );
  partnersDone.catch(() => {});
  // The first refusal wins: a partner's (it refused the compute enclave, or its source) or the compute enclave's. A
  // partner whose rows the compute enclave did not take, whose stream it cut (it refused that partner on the TLS
  // session), or that could not reach its listener (the compute enclave refused the run after it started listening
  // and closed it), reports only that; the compute enclave's reason is the cause.
  const [, outcome] = await Promise.all([
    partnersDone.catch(async (e: unknown) => {
      if (!(e instanceof CollabRefusedError && computeSideCodes.has(e.code))) throw e;
      const cause = await Promise.race([computing.then(() => undefined, (c: unknown) => c), new Promise((resolve) => setTimeout(resolve, 5_000, undefined))]);
      throw cause ?? e;
    }),
    computing,
  ]);
  const predicate = computePredicate(outcome, computeNode.enclave.identity.provenanceKey);
  step({ step: "computed", rowsDelivered: predicate.rowsDelivered, rowsSuppressed: predicate.rowsSuppressed, epsilonSpent: predicate.epsilonSpent });
  o.tamper?.onComputed?.(outcome);
  if (o.tamper?.skipRecord) {
    const released = await computeNode.enclave.releaseCollabResult({ ...binding, runId, resultDigest: outcome.outputs[0]!.digest }).catch((e: unknown) => {
      throw refusal(e, loaded.file.parties[computeIndex]!.name);
    });
    throw new CollabRunError("COLLAB_VERIFY_FAILED", `the compute enclave released ${released.bytes.length} bytes of an unrecorded run`);
  }

  // The compute party's node records the run and publishes the provenance and the sealed result (ciphertext for the
  // recipient); a compute enclave with its party's endpoints releases the result only once it proved the record.
  const recorded = await recordAndPublish(computeNode.writer, net.store, { contract: net.contract, collaborationId: id, runId, signer: computeNode.enclave.identity.signer, outcome, predicate, enclave: computeNode.enclave }).catch((e: unknown) => {
    throw refusal(e, loaded.file.parties[computeIndex]!.name);
  });
  step({ step: "recorded", runId, gasUsed: recorded.gasUsed });
  const { provenanceCid, resultCid } = recorded;
  const resultBlob = { bytes: recorded.result };

  const checks = await verifyRun(net, { collaborationId: id, runId, provenance: outcome.provenance.bytes, result: resultBlob.bytes, computeProvenanceKey: computeNode.enclave.identity.provenanceKey, terms });
  checks.push(releaseNote(recorded.releasedAt));
  const released = recorded.releasedAt ? { releasedAt: recorded.releasedAt } : {};
  if (loaded.recipientIndex < 0) {
    // A table or an endpoint: the compute enclave delivered the rows itself; the output is its public receipt.
    const receipt = JSON.parse(new TextDecoder().decode(resultBlob.bytes)) as { delivered: string; rowsDelivered: number; rowsSuppressed: number };
    step({ step: "delivered", party: receipt.delivered, path: receipt.delivered });
    checks.push(`the compute enclave delivered ${receipt.rowsDelivered} rows to ${receipt.delivered} over TLS with the pinned certificate (its receipt is the provenance subject)`);
    return { collaborationId: id, runId, provenanceCid, resultCid, deliveredTo: receipt.delivered, checks, recordGas: recorded.gasUsed, ...released };
  }
  // Delivered to the recipient party's node, which keeps it sealed to the recipient.
  const recipientNode = nodes[loaded.recipientIndex]!;
  const dir = join(recipientNode.dataDir, "collab-results");
  await mkdir(dir, { recursive: true });
  const deliveredTo = join(dir, `${id.toString(16).slice(0, 16)}-run${runId}.sealed`);
  await writeFile(deliveredTo, resultBlob.bytes);
  step({ step: "delivered", party: recipientNode.name, path: deliveredTo });
  const plain = await openCollabBlob(o.recipientKey.privateKey, collabResultInfo(binding, runId, o.recipientKey.publicKey), resultBlob.bytes, "the delivered result");
  const result = decodeCollabResult(plain);
  checks.push(`the result opened with ${recipientNode.name}'s key (pinned in the terms): ${result.rows.length} rows, ${result.suppressed} suppressed`);
  return { collaborationId: id, runId, result, provenanceCid, resultCid, deliveredTo, checks, recordGas: recorded.gasUsed, ...released };
}

/** What a verifier checks of a run: the provenance signature, its predicate against the terms, the result digest, the run on chain. */
export async function verifyRun(
  net: CollabNetwork,
  r: { collaborationId: bigint; runId: number; provenance: Uint8Array; result: Uint8Array; computeProvenanceKey: Hex; terms: CollaborationTerms },
): Promise<string[]> {
  const checks: string[] = [];
  const fail = (what: string) => {
    throw new CollabRunError("COLLAB_VERIFY_FAILED", `run ${r.runId} of collaboration ${r.collaborationId}: ${what}`);
  };
  const statement = verifyProvenance(r.provenance, hexBytes(r.computeProvenanceKey));
  checks.push(`provenance signed by the compute enclave's provenance key (${statement.predicate.enclave.signer})`);
  const predicate = (statement.predicate as unknown as Record<string, CollabComputePredicate | undefined>)["collab-compute"];
  if (!predicate) return fail("the provenance is not a clean-room run's");
  if (predicate.collaborationId !== r.collaborationId.toString() || predicate.runId !== r.runId) fail("the provenance names another collaboration or run");
  if (predicate.queryDigest !== r.terms.queryDigest.toLowerCase() || predicate.policyDigest !== r.terms.policyDigest.toLowerCase()) fail("the provenance names another query or policy than the terms");
  checks.push(`the provenance names the approved query ${predicate.queryDigest.slice(0, 18)}… and policy ${predicate.policyDigest.slice(0, 18)}…`);
  const subject = statement.subject.find((s) => s.name === "result");
  if (!subject || `0x${subject.digest.sha256}` !== sha256(r.result)) fail("the result's SHA-256 is not the provenance subject");
  checks.push("the sealed result is the provenance subject");
  const runs = await readRuns(net.reader, net.contract, r.collaborationId);
  const onChain = runs.find((x) => x.runId === r.runId);
  if (!onChain) return fail("no such run is recorded on chain");
  if (onChain.provenanceDigest !== sha256(r.provenance) || onChain.resultDigest !== sha256(r.result)) fail("the chain records other digests for this run");
  if (getAddress(onChain.enclave) !== getAddress(statement.predicate.enclave.signer)) fail("the chain records another enclave for this run");
  if (Number(onChain.rowsDelivered) !== predicate.rowsDelivered || Number(onChain.rowsSuppressed) !== predicate.rowsSuppressed) fail("the chain records other row counts");
  checks.push(`run ${r.runId} recorded on chain (tx ${onChain.transactionHash.slice(0, 12)}…) with the same result and provenance digests, rows and epsilon`);
  for (const p of predicate.parties) checks.push(`party ${p.name}: enclave ${p.enclave.signer} measurement ${p.enclave.measurement.slice(0, 16)}…, attested by its peer`);
  return checks;
}

export async function newRecipientKey(): Promise<HpkeKeyPair> {
  return generateHpkeKeyPair();
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
}

/** What the compute job is told of the recipient: the party's key, the table's url sealed to the compute enclave, or that it is the endpoint the terms name. */
async function deliveryFor(loaded: LoadedCollabFile, compute: CollabPartyNode, binding: CollabBinding, o: RunOptions): Promise<CollabComputeParams["delivery"]> {
  const r = loaded.file.recipient;
  if ("party" in r) return { kind: "party", key: toHex(o.tamper?.recipientKey ?? o.recipientKey.publicKey) };
  if ("https" in r) return { kind: "https" };
  // The recipient's side seals the table's url, credentials included, to the compute enclave: its host carries ciphertext.
  const url = o.tamper?.recipientUrl ?? r.postgres;
  return { kind: "postgres", sealed: await sealCollabBlob(hexBytes(compute.enclave.identity.hpkePublicKey), collabDeliveryInfo(binding), new TextEncoder().encode(JSON.stringify({ url, table: r.table }))) };
}
