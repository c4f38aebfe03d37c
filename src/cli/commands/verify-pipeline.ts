/**
 * `cloister verify <run-id>` for a pipeline run: on an embedded network's
 * --data-dir or a running --network, finds the run by id and checks its
 * anchor, enclave, provenance signature and record (sdk/pipelines.ts).
 */
import { join } from "node:path";
import type { Hex } from "viem";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { chainDefinition, createReaderClient } from "../../chain/clients.ts";
import { readDeployment } from "../../chain/deployment-file.ts";
import { startLocalChain } from "../../chain/local-chain.ts";
import type { NetworkFile } from "../../devnet/network-file.ts";
import { findPipelineRun, verifyRunById, type RunVerdict } from "../../sdk/pipeline-runs.ts";
import { openHeliaStore } from "../../storage/helia-store.ts";
import { openKuboStore } from "../../storage/kubo-store.ts";
import { manifestFrom } from "../network-options.ts";
import { printJson } from "../output.ts";

interface Flags {
  policy?: string;
  "sim-pki"?: string;
  "data-dir"?: string;
}

/** The verdict when `runId` is a pipeline run of the network at hand; undefined when it is not one (or no network is at hand). */
export async function verifyPipelineRunTarget(runId: Hex, flags: Flags, network: NetworkFile | undefined): Promise<RunVerdict | undefined> {
  if (network) {
    if (!network.deployment.pipelines) return undefined;
    const reader = createReaderClient({ endpoint: { rpcUrl: network.endpoints.rpc }, chain: chainDefinition(network.chainId, network.endpoints.rpc) });
    const pipelineId = await findPipelineRun(reader, network.deployment.pipelines, runId);
    if (pipelineId === undefined) return undefined;
    const store = openKuboStore(network.endpoints.ipfs);
    try {
      const policy = policyForRole(flags.policy || flags["sim-pki"] ? await manifestFrom(flags) : network.manifest, TASK_ROLE);
      return await verifyRunById({ reader, store, contract: network.deployment.pipelines, registry: network.deployment.registry, policy, runId, pipelineId });
    } finally {
      await store.close();
    }
  }
  const dir = flags["data-dir"];
  if (!dir) return undefined;
  const deployment = await readDeployment(join(dir, "deployment.json"));
  if (!deployment?.pipelines) return undefined;
  const chain = await startLocalChain({ dataDir: join(dir, "chain") });
  try {
    const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
    const pipelineId = await findPipelineRun(reader, deployment.pipelines, runId);
    if (pipelineId === undefined) return undefined;
    const store = await openHeliaStore(join(dir, "ipfs"));
    try {
      const policy = policyForRole(await manifestFrom(flags, join(dir, "sim-tee")), TASK_ROLE);
      return await verifyRunById({ reader, store, contract: deployment.pipelines, registry: deployment.registry, policy, runId, pipelineId });
    } finally {
      await store.close();
    }
  } finally {
    await chain.close();
  }
}

export function printPipelineVerdict(v: RunVerdict, json: boolean): number {
  if (json) {
    printJson({ ok: v.ok, job: v.statement?.predicate.job ?? null, pipeline: v.pipelineId.toString(), enclave: v.statement?.predicate.enclave ?? null, checks: v.checks });
  } else {
    const lines = [v.ok ? "pipeline run VERIFIED" : "pipeline run NOT verified", `  pipeline ${v.pipelineId}`];
    for (const c of v.checks) lines.push(`  ${c.ok ? "✓" : "✗"} ${c.name}: ${c.detail}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return v.ok ? 0 : 1;
}
