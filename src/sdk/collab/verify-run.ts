/**
 * The checks of a recorded clean-room run, shared by `cloister verify <collaboration>:<run>`, `collab run` on a
 * network and the dashboard: the provenance record (signature, the compute enclave's attestation bound to the
 * operator the registry names, the sealed result's digest) and the RunRecorded event against it and the
 * approved terms.
 */
import { getAddress, type Address, type Client } from "viem";
import type { Policy } from "../../attestation/policy.ts";
import { readCollaborationTerms } from "../../chain/actions/read-collaboration-terms.ts";
import { readEnclave } from "../../chain/actions/read-enclave.ts";
import { readRuns, type RecordedRun } from "../../chain/actions/read-runs.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { epsilonToFixed } from "../../protocol/collaboration.ts";
import type { CollabComputePredicate } from "../../protocol/job-kinds.ts";
import type { BlobStore } from "../../storage/blob-store.ts";
import { rawCidOfDigest } from "../../storage/raw-cid.ts";
import { verifyProvenanceRecord, type ProvenanceCheck, type ProvenanceVerdict } from "../verify-provenance.ts";

/**
 * Run `runId` of a collaboration as the chain records it, with the blobs its digests name on IPFS (each one raw
 * block, so its CID follows from its digest), checked by verifyRecordedRun. Undefined when the chain records no
 * such run; a blob the store does not give (within `timeoutMs`, default 5 s) is a failed "record" check.
 */
export async function verifyRunOnChain(c: {
  reader: Client;
  store: Pick<BlobStore, "get">;
  deployment: { registry: Address; collaborations: Address };
  policy: Policy;
  collaborationId: bigint;
  runId: number;
  fromBlock?: bigint;
  timeoutMs?: number;
}): Promise<ProvenanceVerdict | undefined> {
  const { store, collaborationId } = c;
  const run = (await readRuns(c.reader, c.deployment.collaborations, collaborationId, c.fromBlock ?? 0n)).find((r) => r.runId === c.runId);
  if (!run) return undefined;
  const get = (cid: string) => store.get(cid, { signal: AbortSignal.timeout(c.timeoutMs ?? 5_000) });
  const blobs = await Promise.all(
    ([["provenance record", run.provenanceDigest], ["sealed result", run.resultDigest]] as const).map(([what, digest]) => {
      const cid = rawCidOfDigest(digest);
      return get(cid).catch((error: Error) => `the ${what} ${cid} that run ${c.runId} names on chain is not readable from IPFS: ${error.message}`);
    }),
  );
  const [envelope, result] = blobs;
  if (typeof envelope === "string" || typeof result === "string") {
    return { ok: false, checks: blobs.filter((b) => typeof b === "string").map((detail) => ({ name: "record", ok: false, detail })) };
  }
  return verifyRecordedRun({ reader: c.reader, deployment: c.deployment, policy: c.policy, evidence: get, collaborationId, run, envelope: envelope!, result: result! });
}

/** `run` is the RunRecorded event of the run (read-runs.ts); `envelope` and `result` the blobs its digests name. */
export async function verifyRecordedRun(c: {
  reader: Client;
  deployment: { registry: Address; collaborations: Address };
  policy: Policy;
  evidence: (cid: string) => Promise<Uint8Array>;
  collaborationId: bigint;
  run: RecordedRun;
  envelope: Uint8Array;
  result: Uint8Array;
}): Promise<ProvenanceVerdict> {
  const { reader, collaborationId, run, envelope, result } = c;
  const { runId } = run;
  const { operator } = await readEnclave(reader, c.deployment.registry, run.enclave);
  const verdict = await verifyProvenanceRecord({ envelope, policy: c.policy, evidence: c.evidence, output: result, operator });
  const checks: ProvenanceCheck[] = [...verdict.checks];
  const predicate = (verdict.statement?.predicate as unknown as Record<string, CollabComputePredicate | undefined> | undefined)?.["collab-compute"];
  const { terms } = await readCollaborationTerms(reader, c.deployment.collaborations, collaborationId);
  const problems = !predicate
    ? ["the record is not a clean-room run's"]
    : [
        ...(predicate.collaborationId !== collaborationId.toString() || predicate.runId !== runId ? ["the record names another collaboration or run"] : []),
        ...(run.provenanceDigest !== sha256(envelope) ? ["the chain records another provenance digest"] : []),
        ...(run.resultDigest !== sha256(result) ? ["the chain records another result digest"] : []),
        ...(getAddress(run.enclave) !== getAddress(verdict.statement!.predicate.enclave.signer) ? [`the run was recorded by enclave ${run.enclave}`] : []),
        ...(Number(run.rowsDelivered) !== predicate.rowsDelivered || Number(run.rowsSuppressed) !== predicate.rowsSuppressed ? ["the chain records other row counts"] : []),
        ...(run.epsilonSpent !== epsilonToFixed(predicate.epsilonSpent) ? ["the chain records another epsilon"] : []),
        ...(predicate.queryDigest !== terms.queryDigest.toLowerCase() || predicate.policyDigest !== terms.policyDigest.toLowerCase() ? ["the record names another query or policy than the approved terms"] : []),
      ];
  checks.push({
    name: "anchor",
    ok: problems.length === 0,
    detail: problems.length
      ? problems.join("; ")
      : `run ${runId} recorded on chain (${run.transactionHash}) by the same enclave with the same provenance and result digests, ${predicate!.rowsDelivered} rows delivered, ${predicate!.rowsSuppressed} suppressed, epsilon ${predicate!.epsilonSpent}; the approved query and policy`,
  });
  return { ...verdict, ok: checks.every((check) => check.ok), checks };
}

/** What a run's signed record says about when its result left the compute enclave (collab run prints it). */
export function releaseOf(predicate: CollabComputePredicate | undefined): string {
  return predicate?.release === "after-record-proved"
    ? "the compute enclave releases the result only once it has proved, at its party's chain endpoints, that this run was recorded with it"
    : "release not proved: the result left the compute enclave with its signed Run (the compute party names no chain endpoints)";
}
