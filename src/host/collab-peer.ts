/**
 * The host's parts of a clean-room run that every driver shares (the node daemon's collab-driver.ts and the
 * embedded one, src/sdk/collab/run.ts): introducing its enclave to the peers (fresh evidence bound to its
 * operator, on IPFS), rebuilding a peer from the record another node published, and recording and
 * publishing the compute enclave's outcome. The host handles public keys, evidence and ciphertext only.
 */
import type { Address, Hex } from "viem";
import { decodeEvidenceDocument, encodeEvidence } from "../attestation/evidence-codec.ts";
import { recordRun } from "../chain/actions/record-run.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { JobOutcome, ReleaseCollabResultParams, ReleaseCollabResultResult } from "../enclave/call-gate.ts";
import { EnclaveError } from "../enclave/errors.ts";
import { sha256 } from "../crypto/sha256.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import type { CollabPeer } from "../enclave/jobs/collab-params.ts";
import { digestSet } from "../protocol/anchor.ts";
import type { CollabPeerRecord } from "../protocol/collab-kit.ts";
import { epsilonToFixed, type RunReport } from "../protocol/collaboration.ts";
import type { CollabComputePredicate } from "../protocol/job-kinds.ts";
import { verifyProvenance } from "../protocol/provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { CloisterError } from "../util/base-error.ts";

export type CollabHostErrorCode = "COLLAB_PEER_INVALID" | "COLLAB_PUBLISH_MISMATCH" | "COLLAB_RUN_TIMEOUT";
export class CollabHostError extends CloisterError<CollabHostErrorCode> {}

/** The peer record the host introduces for `enclave` as party `party`: its keys and fresh evidence for `operator`, the evidence document on IPFS. */
export async function attestPeer(
  enclave: Pick<EnclaveClient, "identity" | "attest">,
  store: BlobStore,
  o: { party: number; operator: Address; freshness: Hex; manifest: string; role: string },
): Promise<{ peer: CollabPeer; evidenceCid: string }> {
  const id = enclave.identity;
  const { evidence } = await enclave.attest({ freshness: o.freshness, operator: o.operator });
  const keys = { signer: id.signer, hpkePublicKey: id.hpkePublicKey, provenanceKey: id.provenanceKey, tlsKey: id.tlsKey };
  const evidenceCid = await store.put(encodeEvidence(evidence, keys));
  return { peer: { party: o.party, ...keys, operator: o.operator, freshness: o.freshness, evidence, manifest: o.manifest, role: o.role }, evidenceCid };
}

/** The peer another node published (its record, its evidence document from IPFS); its enclave checks it all. */
export async function peerOfRecord(store: BlobStore, record: CollabPeerRecord): Promise<CollabPeer> {
  const { evidence, enclaveKeys } = decodeEvidenceDocument(await store.get(record.evidenceCid));
  if (!enclaveKeys) throw new CollabHostError("COLLAB_PEER_INVALID", `party ${record.party}'s evidence document ${record.evidenceCid} names no enclave keys`);
  return { party: record.party, ...enclaveKeys, operator: record.operator, freshness: record.freshness, evidence, manifest: record.manifest, role: record.role };
}

/** The compute enclave's provenance predicate, its signature checked against the enclave's provenance key. */
export function computePredicate(outcome: JobOutcome, provenanceKey: Hex): CollabComputePredicate {
  const statement = verifyProvenance(outcome.provenance.bytes, Uint8Array.from(Buffer.from(provenanceKey.slice(2), "hex")));
  return (statement.predicate as unknown as Record<string, CollabComputePredicate>)["collab-compute"]!;
}

/** How long the host asks a compute enclave to release a held result while the record is not proved yet (finality). */
const RELEASE_WAIT_MS = 120_000;

/**
 * Records the compute enclave's run on chain (the contract checks the enclave, the approvals, maxRuns and the
 * budget) and publishes its provenance and sealed result under the CIDs the enclave computed. A compute enclave
 * whose party names chain endpoints holds the result until it proves the record (`release` in its predicate):
 * the host then asks it, until the record is `finalityDepth` blocks deep there, and publishes what it releases.
 */
export async function recordAndPublish(
  writer: WriterClient,
  store: BlobStore,
  c: { contract: Address; collaborationId: bigint; runId: number; signer: Address; outcome: JobOutcome; predicate: CollabComputePredicate; enclave: Pick<EnclaveClient, "releaseCollabResult"> },
): Promise<{ gasUsed: bigint; transactionHash: Hex; provenanceCid: string; resultCid: string; result: Uint8Array; releasedAt?: CollabReleasedAt }> {
  const { outcome, predicate } = c;
  const output = outcome.outputs[0]!;
  const report: RunReport = {
    runId: c.runId,
    enclave: c.signer,
    inputDigest: digestSet(predicate.datasets.map((d) => ({ name: `${d.party}/${d.name}`, digest: d.digest }))),
    resultDigest: output.digest,
    provenanceDigest: outcome.provenance.digest,
    rowsDelivered: BigInt(predicate.rowsDelivered),
    rowsSuppressed: BigInt(predicate.rowsSuppressed),
    epsilonSpent: epsilonToFixed(predicate.epsilonSpent),
  };
  // Recorded first: a run the chain refuses (maxRuns, budget, a withdrawn approval) is never published. Readers
  // of a just-recorded run may find its blobs a moment later (collab run <id> and the dashboard wait for them).
  const recorded = await recordRun(writer, c.contract, c.collaborationId, report, outcome.anchor.signature);
  const released = predicate.release === "after-record-proved" ? await awaitRelease(c.enclave, { chainId: BigInt(await writer.getChainId()), contract: c.contract, collaborationId: c.collaborationId, runId: c.runId, resultDigest: output.digest }) : undefined;
  const resultBlob = released ? { ...output, bytes: released.bytes } : output;
  if (released && sha256(resultBlob.bytes) !== output.digest) throw new CollabHostError("COLLAB_PUBLISH_MISMATCH", "the enclave released other bytes than the result digest it signed");
  const [provenanceCid, resultCid] = await Promise.all([store.put(outcome.provenance.bytes), store.put(resultBlob.bytes)]);
  if (provenanceCid !== outcome.provenance.cid || resultCid !== resultBlob.cid) throw new CollabHostError("COLLAB_PUBLISH_MISMATCH", "the store returned other CIDs than the enclave computed for the run's blobs");
  return { gasUsed: recorded.gasUsed, transactionHash: recorded.hash, provenanceCid, resultCid, result: resultBlob.bytes, ...(released ? { releasedAt: released.provedAt } : {}) };
}

export type CollabReleasedAt = ReleaseCollabResultResult["provedAt"];

/** Says whether a run's release was proved after its record (for logs, checks and the CLI). */
export function releaseNote(at: CollabReleasedAt | undefined): string {
  return at
    ? `released after the compute enclave proved the run recorded with this result at block ${at.number} (its party's chain endpoints)`
    : "release not proved: the result left the compute enclave with its signed Run (the compute party names no chain endpoints)";
}

/** Asks the compute enclave to release a held result until it has proved the run's record (COLLAB_RUN_PENDING meanwhile) or RELEASE_WAIT_MS pass. */
export async function awaitRelease(enclave: Pick<EnclaveClient, "releaseCollabResult">, params: ReleaseCollabResultParams, waitMs = RELEASE_WAIT_MS): Promise<ReleaseCollabResultResult> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await enclave.releaseCollabResult(params);
    } catch (e) {
      const retry = e instanceof EnclaveError && e.code === "COLLAB_REFUSED" && /^COLLAB_(RUN_PENDING|CHAIN_UNPROVEN):/.test(e.message);
      if (!retry || Date.now() > deadline) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
