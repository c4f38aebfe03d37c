/**
 * `cloister collab run <file>` on an embedded network: one node per party (each with its own enclave
 * process on the simulated TEE), the collaboration created, approved by every party, run once, the result
 * delivered to the recipient party's node and opened with the recipient's key.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TASK_ROLE } from "../attestation/manifest/index.ts";
import { createWriterClient } from "../chain/clients.ts";
import { termsHash } from "../protocol/collaboration.ts";
import { CollabRunError } from "../sdk/collab/errors.ts";
import { loadCollabFile, type LoadedCollabFile } from "../sdk/collab/file.ts";
import { approveAsParty, buildTerms, createOnChain, newRecipientKey, runCollaboration, type CollabNetwork, type CollabPartyNode, type CollabRunOutcome, type CollabStep } from "../sdk/collab/run.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork, type EmbeddedNetworkOptions } from "./embedded.ts";

export interface EmbeddedCollab {
  network: EmbeddedNetwork;
  net: CollabNetwork;
  nodes: CollabPartyNode[];
}

/** Starts an embedded network with one node per party of `loaded`. */
export async function startCollabNetwork(loaded: LoadedCollabFile, options: EmbeddedNetworkOptions = {}): Promise<EmbeddedCollab> {
  const network = await startEmbeddedNetwork({ ...options, nodes: loaded.file.parties.length });
  try {
    const { chain, deployment } = network;
    if (!deployment.collaborations) throw new CollabRunError("COLLAB_NOT_DEPLOYED", "the network's deployment names no Collaborations contract");
    const net: CollabNetwork = {
      chainId: BigInt(chain.chainId),
      contract: deployment.collaborations,
      reader: network.requester,
      store: network.store,
      manifest: network.manifest,
      role: TASK_ROLE,
    };
    const nodes = loaded.file.parties.map((p, i) => {
      const account = chain.accounts.operators[i]!;
      return {
        name: p.name,
        account,
        writer: createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account }),
        enclave: network.enclaves[i]!,
        nextListener: () => network.nextListener(i),
        dataDir: join(network.dataDir, "nodes", String(i)),
      };
    });
    return { network, net, nodes };
  } catch (e) {
    await network.close();
    throw e;
  }
}

/** Creates the collaboration of `loaded`, has every party approve it; returns its id, terms and the recipient's key. */
export async function createAndApprove(c: EmbeddedCollab, loaded: LoadedCollabFile, onStep: (s: CollabStep) => void = () => {}) {
  const recipientKey = await newRecipientKey();
  const terms = buildTerms(loaded, c.nodes, c.net, recipientKey.publicKey);
  const hash = termsHash(terms);
  const { collaborationId, gasUsed } = await createOnChain(c.net, c.network.requester, terms);
  onStep({ step: "created", collaborationId, gasUsed });
  for (const node of c.nodes) onStep({ step: "approved", party: node.name, gasUsed: await approveAsParty(c.net, node, collaborationId, terms, hash) });
  return { collaborationId, terms, termsHash: hash, recipientKey };
}

/** The whole of `cloister collab run <file>`: network, create, approve, run, deliver. */
export async function runCollabFile(path: string, options: EmbeddedNetworkOptions & { onCollabStep?: (s: CollabStep) => void } = {}): Promise<CollabRunOutcome & { loaded: LoadedCollabFile }> {
  const loaded = await loadCollabFile(path);
  const c = await startCollabNetwork(loaded, options);
  try {
    const made = await createAndApprove(c, loaded, options.onCollabStep);
    const outcome = await runCollaboration(c.net, { ...made, loaded, nodes: c.nodes, onStep: options.onCollabStep });
    await recordRunIndex(c.network.dataDir, outcome);
    return { ...outcome, loaded };
  } finally {
    await c.network.close();
  }
}

/** The run's collaboration id and run number as `cloister verify` takes them: `0x<64 hex>:<run>`. */
export function runRef(collaborationId: bigint, runId: number): string {
  return `0x${collaborationId.toString(16).padStart(64, "0")}:${runId}`;
}

/**
 * Where an embedded network's runs' blobs are: the chain records a run's digests, not the CIDs, so the data
 * dir keeps `collab-runs.json` (run reference -> provenance and result CIDs) for `cloister verify <run>`.
 */
export async function recordRunIndex(dataDir: string, outcome: Pick<CollabRunOutcome, "collaborationId" | "runId" | "provenanceCid" | "resultCid">): Promise<void> {
  const path = join(dataDir, "collab-runs.json");
  const index = JSON.parse(await readFile(path, "utf8").catch(() => "{}")) as Record<string, { provenanceCid: string; resultCid: string }>;
  index[runRef(outcome.collaborationId, outcome.runId)] = { provenanceCid: outcome.provenanceCid, resultCid: outcome.resultCid };
  await writeFile(path, `${JSON.stringify(index, null, 2)}\n`);
}

export async function readRunIndex(dataDir: string): Promise<Record<string, { provenanceCid: string; resultCid: string }>> {
  return JSON.parse(await readFile(join(dataDir, "collab-runs.json"), "utf8").catch(() => "{}")) as Record<string, { provenanceCid: string; resultCid: string }>;
}
