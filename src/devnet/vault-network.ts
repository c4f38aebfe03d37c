/**
 * Vault clusters for a devnet (issue 15): C clusters of n vault enclave
 * processes (5 by default), one VaultHost per cluster supervising its n
 * enclaves (what fits a 2-core machine), an in-process directory so hosts
 * and owners reach each other, and handles to stop, restart and add
 * enclaves (the demo and the tests use them).
 *
 * Registration: the devnet's attester account registers each vault enclave
 * directly with its simulated identity (measurement, HPKE key). The
 * attestation service's evidence check that task enclaves go through is not
 * wired for vault enclaves yet (docs/vault.md, "Not built").
 */
import { join } from "node:path";
import { keccak256, stringToBytes, type Address } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../chain/abi/SecretVault.ts";
import { createCluster } from "../chain/actions/create-cluster.ts";
import { onChainMeasurement, registerEnclave } from "../chain/actions/register-enclave.ts";
import { replaceClusterMember } from "../chain/actions/replace-cluster-member.ts";
import type { ReaderClient, WriterClient } from "../chain/clients.ts";
import type { AttestationConfig } from "../enclave/call-gate.ts";
import { startVaultEnclave, type VaultEnclaveClient } from "../enclave/vault/client.ts";
import type { VaultChainConfigParams } from "../enclave/vault/gate.ts";
import { createNetRelay } from "../host/net-relay.ts";
import { VaultHost, type VaultDirectory, type VaultHostEvent, type VaultSlotApi } from "../host/vault-host.ts";
import { VaultReshareKeeper, type VaultReshareEvent } from "../host/vault-reshare-keeper.ts";

export interface VaultNetworkOptions {
  rpcUrl: string;
  chainId: number;
  reader: ReaderClient;
  vault: Address;
  registry: Address;
  /** Holds ATTESTER_ROLE on the registry. */
  attester: WriterClient;
  /** Holds CLUSTER_ADMIN_ROLE on the vault. */
  clusterAdmin: WriterClient;
  /** One per cluster: the account its host relays confirmations with (also the enclaves' operator). */
  hostWriters: WriterClient[];
  clusters: number;
  /** Slots per cluster (default 5). */
  size?: number;
  dataDir: string;
  /** The simulated TEE's PKI dir. */
  pkiDir: string;
  onFrame?: (enclave: string, direction: "to-enclave" | "from-enclave", frame: unknown) => void;
  onEvent?: (host: number, e: VaultHostEvent) => void;
  /** Shares per fetch and per bootstrap page (VaultHost's pageSize, default 500). */
  pageSize?: number;
  /** Bootstrap pages per bootstrapFrom call (VaultHost's pagesPerCall, default 10). */
  pagesPerCall?: number;
  /** The first block the re-share keepers scan (the vault's deployment block; default 0). */
  fromBlock?: bigint;
  /** What each cluster's re-share keeper does (cluster index). */
  onReshare?: (cluster: number, e: VaultReshareEvent) => void;
  /** Start each host's crawl loop and each cluster's re-share keeper (default true). */
  crawl?: boolean;
  /** One host supervises every cluster (with hostWriters[0]), as one devnet process does; default one host per cluster. */
  sharedHost?: boolean;
  /** Peer fetches enclave to enclave over mutual attested TLS through each host's relay (default true); false: host-relayed HPKE envelopes only. */
  atls?: boolean;
  /** Sees every byte the hosts' relays carry for the enclaves' TLS sessions (tests look for canaries in it). */
  onCarried?: (bytes: Uint8Array) => void;
}

export interface VaultClusterInfo {
  id: bigint;
  members: Address[];
}

export interface VaultNetwork {
  directory: VaultDirectory;
  hosts: VaultHost[];
  clusters: VaultClusterInfo[];
  /** The enclave process at (cluster index, slot), or undefined when stopped. */
  enclave(clusterIndex: number, slot: number): VaultEnclaveClient | undefined;
  /** Kills the enclave process at (cluster index, slot) (SIGKILL: no clean shutdown). */
  stop(clusterIndex: number, slot: number): Promise<void>;
  /** Starts it again on its data dir: it unseals its keys and state and recovers by crawling. */
  restart(clusterIndex: number, slot: number): Promise<VaultEnclaveClient>;
  /** Replaces the member at (cluster index, slot) by a new enclave, which bootstraps its slot from the other clusters. */
  replace(clusterIndex: number, slot: number): Promise<VaultEnclaveClient>;
  dataDirOf(clusterIndex: number, slot: number): string;
  /** Re-shares a token in the cluster at `clusterIndex` (its host runs the refresh: see VaultHost.reshare). */
  reshare(tokenId: bigint, clusterIndex: number): Promise<{ version: bigint; newRoot: `0x${string}`; transactionHash: `0x${string}` }>;
  close(): Promise<void>;
}

export async function startVaultNetwork(o: VaultNetworkOptions): Promise<VaultNetwork> {
  const size = o.size ?? 5;
  const attestation: AttestationConfig = { provider: "sim", pkiDir: o.pkiDir };
  const chain: VaultChainConfigParams = { chainId: o.chainId, vault: o.vault, registry: o.registry, endpoints: [{ name: "devnet", url: o.rpcUrl }], quorum: 1, finalityDepth: 0 };
  const apis = new Map<string, VaultSlotApi>();
  const listeners = new Map<string, { host: string; port: number }>();
  const directory: VaultDirectory = { node: (enclave) => apis.get(enclave.toLowerCase()), listenerOf: (enclave) => listeners.get(enclave.toLowerCase()) };
  const atls = o.atls ?? true;
  const distinct = Array.from({ length: o.sharedHost ? 1 : o.clusters }, (_, i) => {
    const writer = o.hostWriters[i % o.hostWriters.length]!;
    return new VaultHost({ writer, reader: o.reader, vault: o.vault, directory, ...(o.pageSize ? { pageSize: o.pageSize } : {}), ...(o.pagesPerCall ? { pagesPerCall: o.pagesPerCall } : {}), ...(o.onEvent ? { onEvent: (e: VaultHostEvent) => o.onEvent!(i, e) } : {}) });
  });
  // hosts[c] supervises cluster c (the same object for every cluster when shared).
  const hosts = Array.from({ length: o.clusters }, (_, c) => distinct[o.sharedHost ? 0 : c]!);
  const running = new Map<string, VaultEnclaveClient>();
  const dirs = new Map<string, string>();
  let generation = 0;
  const key = (c: number, s: number) => `${c}:${s}`;

  async function launch(c: number, s: number, dataDir: string): Promise<VaultEnclaveClient> {
    const client = await startVaultEnclave({
      dataDir,
      attestation,
      chain,
      // Everything is on 127.0.0.1 here: the relay may dial loopback, and listens there for peers.
      ...(atls ? { relay: createNetRelay({ privateDestinations: "allow", inbound: { bindHost: "127.0.0.1" }, ...(o.onCarried ? { onCarried: (c: { bytes: Uint8Array }) => o.onCarried!(c.bytes) } : {}) }) } : {}),
      ...(o.onFrame ? { onFrame: (d: "to-enclave" | "from-enclave", f: unknown) => o.onFrame!(`${c}:${s}`, d, f) } : {}),
    });
    running.set(key(c, s), client);
    apis.set(client.identity.signer.toLowerCase(), hosts[c]!.add(client));
    if (atls) listeners.set(client.identity.signer.toLowerCase(), await client.listen());
    return client;
  }

  async function register(client: VaultEnclaveClient, c: number): Promise<void> {
    const block = await o.reader.getBlock();
    await registerEnclave(o.attester, o.registry, {
      enclave: client.identity.signer,
      operator: hosts[c] ? o.hostWriters[c % o.hostWriters.length]!.account.address : o.attester.account.address,
      hpkePublicKey: client.identity.hpkePublicKey,
      teeType: client.identity.teeType,
      simulated: client.identity.simulated,
      measurement: onChainMeasurement(`0x${client.identity.measurement}`),
      expiry: block.timestamp + 30n * 24n * 3600n,
      evidenceCid: `devnet-vault-${keccak256(stringToBytes(client.identity.signer)).slice(2, 14)}`,
    });
  }

  const clusters: VaultClusterInfo[] = [];
  for (let c = 0; c < o.clusters; c++) {
    const members = await Promise.all(
      Array.from({ length: size }, (_, s) => {
        const dir = join(o.dataDir, `cluster-${c}-slot-${s}-${generation}`);
        dirs.set(key(c, s), dir);
        return launch(c, s, dir);
      }),
    );
    for (const m of members) await register(m, c);
    // A devnet restarted on its data dir: the enclaves unsealed the same keys, so they are members already.
    const [existing, , used] = await readContract(o.reader, { address: o.vault, abi: secretVaultAbi, functionName: "membershipOf", args: [members[0]!.identity.signer] });
    const cluster = used ? existing : (await createCluster(o.clusterAdmin, o.vault, members.map((m) => m.identity.signer))).cluster;
    clusters.push({ id: cluster, members: members.map((m) => m.identity.signer) });
  }
  // Fresh clusters have nothing to bootstrap: each new enclave ends bootstrap at once; restarted ones recover.
  for (let c = 0; c < o.clusters; c++) {
    for (let s = 0; s < size; s++) {
      const e = running.get(key(c, s))!;
      if (e.identity.state === "bootstrapping") await hosts[c]!.bootstrap(e.identity.signer);
    }
  }
  for (const h of distinct) await h.syncOnce();
  // Each cluster's host re-shares its tokens after a member is replaced (it supervises every member).
  const keepers = clusters.map((c, i) => new VaultReshareKeeper({ reader: o.reader, vault: o.vault, cluster: c.id, host: hosts[i]!, ...(o.fromBlock === undefined ? {} : { fromBlock: o.fromBlock }), ...(o.onReshare ? { onEvent: (e: VaultReshareEvent) => o.onReshare!(i, e) } : {}) }));
  if (o.crawl ?? true) {
    for (const h of distinct) h.start();
    for (const k of keepers) k.start();
  }

  async function stop(c: number, s: number): Promise<void> {
    const e = running.get(key(c, s));
    if (!e) return;
    running.delete(key(c, s));
    apis.delete(e.identity.signer.toLowerCase());
    listeners.delete(e.identity.signer.toLowerCase());
    hosts[c]!.remove(e.identity.signer);
    await e.kill();
  }

  return {
    directory,
    hosts,
    clusters,
    enclave: (c, s) => running.get(key(c, s)),
    dataDirOf: (c, s) => dirs.get(key(c, s))!,
    reshare: (tokenId, c) => hosts[c]!.reshare(tokenId, clusters[c]!.id),
    stop,
    async restart(c, s) {
      const e = await launch(c, s, dirs.get(key(c, s))!);
      await hosts[c]!.syncOnce();
      return e;
    },
    async replace(c, s) {
      await stop(c, s);
      generation++;
      const dir = join(o.dataDir, `cluster-${c}-slot-${s}-${generation}`);
      dirs.set(key(c, s), dir);
      const e = await launch(c, s, dir);
      await register(e, c);
      await replaceClusterMember(o.clusterAdmin, o.vault, clusters[c]!.id, s, e.identity.signer);
      clusters[c]!.members[s] = e.identity.signer;
      await hosts[c]!.bootstrap(e.identity.signer);
      await hosts[c]!.syncOnce();
      return e;
    },
    async close() {
      await Promise.all([...keepers, ...distinct].map((x) => x.stop()));
      await Promise.all([...running.values()].map((e) => e.close()));
      running.clear();
    },
  };
}
