/**
 * `cloister verify <provenance-file | task-id>`: checks one execution's
 * provenance record: its signature, the enclave's attestation under a policy,
 * the output digest, and its on-chain anchor when the chain is at hand (an
 * embedded network's --data-dir, or a running network's --network).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isAddress, parseEventLogs } from "viem";
import { getLogs } from "viem/actions";
import { taskMarketAbi } from "../../chain/abi/TaskMarket.ts";
import { chainDefinition, createReaderClient, type ReaderClient } from "../../chain/clients.ts";
import { startLocalChain } from "../../chain/local-chain.ts";
import { readDeployment } from "../../chain/deployment-file.ts";
import type { NetworkFile } from "../../devnet/network-file.ts";
import { unverifiedStatement } from "../../protocol/provenance.ts";
import { verifyProvenanceRecord, type ProvenanceSources, type ProvenanceVerdict } from "../../sdk/verify-provenance.ts";
import type { BlobStore } from "../../storage/blob-store.ts";
import { openHeliaStore } from "../../storage/helia-store.ts";
import { openKuboStore } from "../../storage/kubo-store.ts";
import { readInputFile } from "../args.ts";
import { loadNetwork, namedNetwork } from "../network-file.ts";
import { manifestFrom } from "../network-options.ts";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { UsageError } from "../errors.ts";
import { printJson } from "../output.ts";
import { verifyUsage } from "../usage.ts";
import { printPipelineVerdict, verifyPipelineRunTarget } from "./verify-pipeline.ts";
import type { Deployment } from "../../chain/deployment.ts";

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      evidence: { type: "string" },
      output: { type: "string" },
      operator: { type: "string" },
      policy: { type: "string" },
      "sim-pki": { type: "string" },
      "data-dir": { type: "string" },
      network: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`verify takes one provenance file or task id\n\n${verifyUsage}`);
  const target = positionals[0]!;
  // An explicit --data-dir names an embedded network's state, whatever CLOISTER_NETWORK says.
  if (values.network && values["data-dir"]) throw new UsageError("give either --network (a running network) or --data-dir (an embedded network's state), not both");
  const named = namedNetwork(values.network, values["data-dir"] !== undefined);
  const network = named === undefined ? undefined : await loadNetwork(named, values.network === undefined);
  // A 32-byte hex id may be a pipeline run's (verify-pipeline.ts); <collaboration>:<run> a clean-room run's; otherwise it is a task id.
  const run = /^0x[0-9a-fA-F]{64}$/.test(target) ? await verifyPipelineRunTarget(target as `0x${string}`, values, network) : undefined;
  if (run) return printPipelineVerdict(run, values.json);
  const verdict = /^0x[0-9a-fA-F]+:\d+$/.test(target)
    ? await (await import("./verify-collab.ts")).verifyCollabRun(target, values, network)
    : /^(0x[0-9a-fA-F]+|\d+)$/.test(target)
    ? await (network ? verifyNetworkTask(BigInt(target), network, values) : verifyTask(BigInt(target), values))
    : await verifyFile(target, values, network);
  if (values.json) {
    const job = verdict.statement?.predicate.job;
    printJson({ ok: verdict.ok, job: job ?? null, taskId: job?.kind === "task" ? job.id : null, enclave: verdict.statement?.predicate.enclave ?? null, checks: verdict.checks });
  } else {
    const lines = [verdict.ok ? "provenance VERIFIED" : "provenance NOT verified"];
    if (verdict.statement) {
      const p = verdict.statement.predicate;
      lines.push(`  ${p.job.kind} ${p.job.id}, enclave ${p.enclave.signer}${p.enclave.simulated ? " (SIMULATED TEE)" : ""}, ran ${p.startedOn} to ${p.finishedOn}`);
    }
    for (const c of verdict.checks) lines.push(`  ${c.ok ? "✓" : "✗"} ${c.name}: ${c.detail}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return verdict.ok ? 0 : 1;
}

interface VerifyFlags {
  evidence?: string;
  output?: string;
  operator?: string;
  policy?: string;
  "sim-pki"?: string;
  "data-dir"?: string;
}

/** The task role's policy of --policy or --sim-pki, else of the network's manifest, else of the strict production manifest. */
async function policyOf(flags: VerifyFlags, network: NetworkFile | undefined) {
  return policyForRole(flags.policy || flags["sim-pki"] || !network ? await manifestFrom(flags) : network.manifest, TASK_ROLE);
}

async function verifyFile(file: string, flags: VerifyFlags, network: NetworkFile | undefined): Promise<ProvenanceVerdict> {
  const sources: ProvenanceSources = { envelope: await readInputFile(file, "provenance file"), policy: await policyOf(flags, network) };
  if (flags.evidence) sources.evidence = await readInputFile(flags.evidence, "evidence file");
  if (flags.output) sources.output = await readInputFile(flags.output, "output file");
  if (flags.operator !== undefined) {
    if (!isAddress(flags.operator, { strict: false })) throw new UsageError(`--operator takes the enclave operator's address (0x and 40 hex digits), got '${flags.operator}'`);
    sources.operator = flags.operator;
  }
  if (network && unverifiedJobKind(sources.envelope) === "operate") return verifyGrantedRun(sources, network);
  return verifyProvenanceRecord(sources);
}

function unverifiedJobKind(envelope: Uint8Array): string | undefined {
  try {
    return unverifiedStatement(envelope).predicate.job.kind;
  } catch {
    return undefined; // verifyProvenanceRecord reports it
  }
}

/** A granted manipulation's record on a running network: its evidence from the network's IPFS, its use from the chain. */
async function verifyGrantedRun(sources: ProvenanceSources, network: NetworkFile): Promise<ProvenanceVerdict> {
  const reader = createReaderClient({ endpoint: { rpcUrl: network.endpoints.rpc }, chain: chainDefinition(network.chainId, network.endpoints.rpc) });
  const store = openKuboStore(network.endpoints.ipfs);
  try {
    const { deployment } = network;
    return await verifyProvenanceRecord({
      ...sources,
      evidence: sources.evidence ?? ((cid) => store.get(cid)),
      chain: { reader, market: deployment.market, fromBlock: deployment.deployBlock, ...(deployment.grants ? { grants: deployment.grants } : {}) },
    });
  } finally {
    await store.close();
  }
}

/** A task of an embedded network: its chain, IPFS store and deployment are all under --data-dir. */
async function verifyTask(taskId: bigint, flags: VerifyFlags): Promise<ProvenanceVerdict> {
  const dir = flags["data-dir"];
  if (!dir) throw new UsageError("verifying a task id needs the network's --data-dir (the directory given to 'cloister task run --data-dir')");
  const deployment = await readDeployment(join(dir, "deployment.json"));
  if (!deployment) throw new UsageError(`no Cloister network in '${dir}' (deployment.json is missing)`);
  const policy = policyForRole(await manifestFrom(flags, join(dir, "sim-tee")), TASK_ROLE);
  const chain = await startLocalChain({ dataDir: join(dir, "chain") });
  const store = await openHeliaStore(join(dir, "ipfs"));
  try {
    const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
    return await verifyAnchoredTask(taskId, { reader, store, deployment, policy, where: `the market of '${dir}'` });
  } finally {
    await store.close();
    await chain.close();
  }
}

/** A task of a running network: its chain and IPFS node at the network file's endpoints. */
async function verifyNetworkTask(taskId: bigint, network: NetworkFile, flags: VerifyFlags): Promise<ProvenanceVerdict> {
  const reader = createReaderClient({ endpoint: { rpcUrl: network.endpoints.rpc }, chain: chainDefinition(network.chainId, network.endpoints.rpc) });
  const store = openKuboStore(network.endpoints.ipfs);
  try {
    return await verifyAnchoredTask(taskId, { reader, store, deployment: network.deployment, policy: await policyOf(flags, network), where: `the market of ${network.path}` });
  } finally {
    await store.close();
  }
}

async function verifyAnchoredTask(
  taskId: bigint,
  o: { reader: ReaderClient; store: Pick<BlobStore, "get">; deployment: Deployment; policy: ProvenanceSources["policy"]; where: string },
): Promise<ProvenanceVerdict> {
  const logs = await getLogs(o.reader, { address: o.deployment.market, fromBlock: o.deployment.deployBlock, toBlock: "latest" });
  const completed = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskCompleted" }).find((l) => l.args.taskId === taskId);
  if (!completed) throw new UsageError(`task ${taskId} has no completion on ${o.where}`);
  return verifyProvenanceRecord({
    envelope: await o.store.get(completed.args.provenanceCid),
    policy: o.policy,
    evidence: (cid) => o.store.get(cid),
    output: await o.store.get(completed.args.outputCid),
    chain: { reader: o.reader, market: o.deployment.market, fromBlock: o.deployment.deployBlock },
  });
}
