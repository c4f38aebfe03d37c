/**
 * A whole Cloister network in one process tree: an in-process EVM chain, an
 * embedded IPFS store, the attestation service, and N nodes, each with its
 * enclave in its own OS process on the simulated TEE. With a data dir its
 * state (chain journal, IPFS blocks, host logs, sealed enclave state)
 * persists there; without one it lives in a temporary directory.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manifestDigest, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import { AttestationService } from "../cas/service.ts";
import { createWriterClient, type WriterClient } from "../chain/clients.ts";
import { startLocalChain, type LocalChain } from "../chain/local-chain.ts";
import { startEnclave, type FrameDirection } from "../enclave/client.ts";
import type { HostEvent } from "../host/log.ts";
import { NodeDaemon } from "../host/node-daemon.ts";
import { CloisterClient } from "../sdk/client.ts";
import { openHeliaStore, type HeliaStore } from "../storage/helia-store.ts";
import { createNetRelay } from "../host/net-relay.ts";
import { deployOrReuse } from "./deploy-or-reuse.ts";
import { localNetworkManifest } from "./network-policy.ts";
import type { Deployment } from "../chain/deployment.ts";

export interface EmbeddedNetworkOptions {
  /** Where the network keeps its state; a temporary directory (removed on close) when omitted. */
  dataDir?: string;
  nodes?: number;
  /** Progress of the network's own setup. */
  onStep?: (message: string) => void;
  /** Everything the nodes' hosts do. */
  onHostEvent?: (node: number, event: HostEvent) => void;
  /** Every call-gate frame a host sends or receives (confidentiality tests). */
  onFrame?: (node: number, direction: FrameDirection, frame: unknown) => void;
}

export interface EmbeddedNetwork {
  dataDir: string;
  chain: LocalChain;
  deployment: Deployment;
  store: HeliaStore;
  /** The network's policy manifest (network-policy.ts): what its attestation service and its client trust. */
  manifest: Manifest;
  /** The manifest's task-role policy. */
  policy: Policy;
  measurement: string;
  nodes: NodeDaemon[];
  /** SDK client for the network's requester account. */
  client: CloisterClient;
  requester: WriterClient;
  close(): Promise<void>;
}

export async function startEmbeddedNetwork(options: EmbeddedNetworkOptions = {}): Promise<EmbeddedNetwork> {
  const step = options.onStep ?? (() => {});
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "cloister-")));
  await mkdir(dataDir, { recursive: true });
  const nodeCount = options.nodes ?? 1;
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    if (temporary) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const chain = await startLocalChain({ dataDir: join(dataDir, "chain"), operators: Math.max(3, nodeCount) });
    cleanups.push(() => chain.close());
    step(`EVM chain ${chain.chainId} running in process (Hardhat EDR)${chain.replayedBlocks ? `, ${chain.replayedBlocks} blocks restored from ${join(dataDir, "chain")}` : ""}`);
    const writer = (account: LocalChain["accounts"]["deployer"]) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });

    const store = await openHeliaStore(join(dataDir, "ipfs"));
    cleanups.push(() => store.close());
    step(`IPFS store ready at ${join(dataDir, "ipfs")}`);

    const deployment = await deployOrReuse(writer(chain.accounts.deployer), { chainId: chain.chainId, attester: chain.accounts.attester.address, path: join(dataDir, "deployment.json") });
    step(`contracts: EnclaveRegistry ${deployment.registry}, TaskMarket ${deployment.market}`);

    const simDir = join(dataDir, "sim-tee");
    const { manifest, policy, measurement } = await localNetworkManifest(simDir);
    step(`policy manifest ${manifestDigest(manifest)}: simulated vendor root of this network (SIMULATED TEE), enclave measurement ${measurement}`);
    const cas = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store, manifest });

    const nodes: NodeDaemon[] = [];
    for (let i = 0; i < nodeCount; i++) {
      const nodeDir = join(dataDir, "nodes", String(i));
      const enclave = await startEnclave({
        dataDir: join(nodeDir, "enclave"),
        attestation: { provider: "sim", pkiDir: simDir },
        // Everything runs on 127.0.0.1 here: the relay may dial loopback, and enclaves may listen for each other.
        relay: createNetRelay({ privateDestinations: "allow", inbound: { bindHost: "127.0.0.1" } }),
        onFrame: options.onFrame ? (direction, frame) => options.onFrame!(i, direction, frame) : undefined,
      });
      const node = new NodeDaemon({
        writer: writer(chain.accounts.operators[i]!),
        deployment,
        store,
        enclave,
        attestationService: cas,
        dataDir: nodeDir,
        onEvent: options.onHostEvent ? (event) => options.onHostEvent!(i, event) : undefined,
      });
      cleanups.push(() => node.stop());
      await node.start();
      nodes.push(node);
    }

    const requester = writer(chain.accounts.requester);
    const client = new CloisterClient({ writer: requester, deployment, store, manifest });
    return { dataDir, chain, deployment, store, manifest, policy, measurement, nodes, client, requester, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
