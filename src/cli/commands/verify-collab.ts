/**
 * `cloister verify <collaboration-id>:<run> --data-dir D`: a clean-room run of an embedded network. The
 * provenance record (signature, the compute enclave's attestation bound to its registered operator, the
 * sealed result's digest) and the run on chain: the RunRecorded event names the same enclave, provenance and
 * result digests, rows and epsilon, and the record names the approved query and policy of the terms.
 */
import { join } from "node:path";
import { getAddress, type Address, type Client } from "viem";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import type { Policy } from "../../attestation/policy.ts";
import { readCollaborationTerms } from "../../chain/actions/read-collaboration-terms.ts";
import { readEnclave } from "../../chain/actions/read-enclave.ts";
import { readRuns } from "../../chain/actions/read-runs.ts";
import { createReaderClient } from "../../chain/clients.ts";
import { readDeployment } from "../../chain/deployment-file.ts";
import { startLocalChain } from "../../chain/local-chain.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { readRunIndex } from "../../devnet/collab-embedded.ts";
import { epsilonToFixed } from "../../protocol/collaboration.ts";
import type { CollabComputePredicate } from "../../protocol/job-kinds.ts";
import { verifyProvenanceRecord, type ProvenanceCheck, type ProvenanceVerdict } from "../../sdk/verify-provenance.ts";
import { openHeliaStore } from "../../storage/helia-store.ts";
import { UsageError } from "../errors.ts";
import { manifestFrom } from "../network-options.ts";

export const RUN_REF = /^(0x[0-9a-fA-F]{1,64}):(\d+)$/;

export async function verifyCollabRun(ref: string, flags: { "data-dir"?: string; policy?: string; "sim-pki"?: string }): Promise<ProvenanceVerdict> {
  const m = RUN_REF.exec(ref)!;
  const collaborationId = BigInt(m[1]!);
  const runId = Number(m[2]);
  const dir = flags["data-dir"];
  if (!dir) throw new UsageError("verifying a clean-room run needs the network's --data-dir (the directory given to 'cloister collab run --data-dir')");
  const deployment = await readDeployment(join(dir, "deployment.json"));
  if (!deployment?.collaborations) throw new UsageError(`no Cloister network with a Collaborations contract in '${dir}'`);
  const blobs = (await readRunIndex(dir))[`0x${collaborationId.toString(16).padStart(64, "0")}:${runId}`];
  if (!blobs) throw new UsageError(`no run ${runId} of collaboration ${m[1]} in '${dir}' (collab-runs.json does not name it)`);
  const policy = policyForRole(await manifestFrom(flags, join(dir, "sim-tee")), TASK_ROLE);
  const chain = await startLocalChain({ dataDir: join(dir, "chain") });
  const store = await openHeliaStore(join(dir, "ipfs"));
  try {
    const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
    const envelope = await store.get(blobs.provenanceCid);
    const result = await store.get(blobs.resultCid);
    return await verifyRecordedRun({ reader, deployment: { registry: deployment.registry, collaborations: deployment.collaborations }, policy, evidence: (cid) => store.get(cid), collaborationId, runId, envelope, result });
  } finally {
    await store.close();
    await chain.close();
  }
}

/**
 * The checks of a recorded run, given its provenance envelope and sealed result: the record (signature, the
 * compute enclave's attestation bound to the operator the registry names, the result's digest) and the
 * RunRecorded event against it and the approved terms.
 */
export async function verifyRecordedRun(c: {
  reader: Client;
  deployment: { registry: Address; collaborations: Address };
  policy: Policy;
  evidence: (cid: string) => Promise<Uint8Array>;
  collaborationId: bigint;
  runId: number;
  envelope: Uint8Array;
  result: Uint8Array;
}): Promise<ProvenanceVerdict> {
  const { reader, collaborationId, runId, envelope, result } = c;
  const contract = c.deployment.collaborations;
  const run = (await readRuns(reader, contract, collaborationId)).find((r) => r.runId === runId);
  if (!run) throw new UsageError(`run ${runId} of collaboration 0x${collaborationId.toString(16)} is not recorded on chain`);
  const { operator } = await readEnclave(reader, c.deployment.registry, run.enclave);
  const verdict = await verifyProvenanceRecord({ envelope, policy: c.policy, evidence: c.evidence, output: result, operator });
  const checks: ProvenanceCheck[] = [...verdict.checks];
  const predicate = (verdict.statement?.predicate as unknown as Record<string, CollabComputePredicate | undefined> | undefined)?.["collab-compute"];
  const { terms } = await readCollaborationTerms(reader, contract, collaborationId);
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
