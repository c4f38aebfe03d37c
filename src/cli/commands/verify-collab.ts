/**
 * `cloister verify <collaboration-id>:<run> --data-dir D | --network N`: a clean-room run of an embedded network
 * (its blobs named by the data dir's run index) or of a running one (the blobs the chain's digests name). The
 * provenance record (signature, the compute enclave's attestation bound to its registered operator, the
 * sealed result's digest) and the run on chain: the RunRecorded event names the same enclave, provenance and
 * result digests, rows and epsilon, and the record names the approved query and policy of the terms.
 */
import { join } from "node:path";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { readRuns } from "../../chain/actions/read-runs.ts";
import { chainDefinition, createReaderClient } from "../../chain/clients.ts";
import { readDeployment } from "../../chain/deployment-file.ts";
import { startLocalChain } from "../../chain/local-chain.ts";
import { readRunIndex } from "../../devnet/collab-embedded.ts";
import type { NetworkFile } from "../../devnet/network-file.ts";
import { verifyRecordedRun, verifyRunOnChain } from "../../sdk/collab/verify-run.ts";
import type { ProvenanceVerdict } from "../../sdk/verify-provenance.ts";
import { openHeliaStore } from "../../storage/helia-store.ts";
import { openKuboStore } from "../../storage/kubo-store.ts";
import { UsageError } from "../errors.ts";
import { manifestFrom } from "../network-options.ts";

export const RUN_REF = /^(0x[0-9a-fA-F]{1,64}):(\d+)$/;

export async function verifyCollabRun(ref: string, flags: { "data-dir"?: string; policy?: string; "sim-pki"?: string }, network?: NetworkFile): Promise<ProvenanceVerdict> {
  const m = RUN_REF.exec(ref)!;
  const collaborationId = BigInt(m[1]!);
  const runId = Number(m[2]);
  if (network) return verifyNetworkRun(network, collaborationId, runId, flags);
  const dir = flags["data-dir"];
  if (!dir) throw new UsageError("verifying a clean-room run needs the network: --network <dir> (a running one) or --data-dir <dir> (the directory given to 'cloister collab run --data-dir')");
  const deployment = await readDeployment(join(dir, "deployment.json"));
  if (!deployment?.collaborations) throw new UsageError(`no Cloister network with a Collaborations contract in '${dir}'`);
  const blobs = (await readRunIndex(dir))[`0x${collaborationId.toString(16).padStart(64, "0")}:${runId}`];
  if (!blobs) throw new UsageError(`no run ${runId} of collaboration ${m[1]} in '${dir}' (collab-runs.json does not name it)`);
  const policy = policyForRole(await manifestFrom(flags, join(dir, "sim-tee")), TASK_ROLE);
  const chain = await startLocalChain({ dataDir: join(dir, "chain") });
  const store = await openHeliaStore(join(dir, "ipfs"));
  try {
    const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
    const run = (await readRuns(reader, deployment.collaborations, collaborationId)).find((r) => r.runId === runId);
    if (!run) throw new UsageError(`run ${runId} of collaboration ${m[1]} is not recorded on chain`);
    const envelope = await store.get(blobs.provenanceCid);
    const result = await store.get(blobs.resultCid);
    return await verifyRecordedRun({ reader, deployment: { registry: deployment.registry, collaborations: deployment.collaborations }, policy, evidence: (cid) => store.get(cid), collaborationId, run, envelope, result });
  } finally {
    await store.close();
    await chain.close();
  }
}

async function verifyNetworkRun(network: NetworkFile, collaborationId: bigint, runId: number, flags: { policy?: string; "sim-pki"?: string }): Promise<ProvenanceVerdict> {
  const { deployment } = network;
  if (!deployment.collaborations) throw new UsageError(`the network of ${network.path} has no Collaborations contract`);
  const policy = policyForRole(flags.policy || flags["sim-pki"] ? await manifestFrom(flags) : network.manifest, TASK_ROLE);
  const reader = createReaderClient({ endpoint: { rpcUrl: network.endpoints.rpc }, chain: chainDefinition(network.chainId, network.endpoints.rpc) });
  const store = openKuboStore(network.endpoints.ipfs);
  try {
    const verdict = await verifyRunOnChain({ reader, store, deployment: { registry: deployment.registry, collaborations: deployment.collaborations }, policy, collaborationId, runId, fromBlock: deployment.deployBlock });
    if (!verdict) throw new UsageError(`run ${runId} of collaboration 0x${collaborationId.toString(16)} is not recorded on chain`);
    return verdict;
  } finally {
    await store.close();
  }
}
