/** A vault devnet for tests: an in-process chain served over HTTP, the contracts, and C clusters of vault enclave processes. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createReaderClient, createWriterClient, type ReaderClient, type WriterClient } from "../../src/chain/clients.ts";
import { deployCloister, type CloisterDeployment } from "../../src/chain/deploy.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { startVaultNetwork, type VaultNetwork } from "../../src/devnet/vault-network.ts";
import type { VaultHostEvent } from "../../src/host/vault-host.ts";
import type { VaultReshareEvent } from "../../src/host/vault-reshare-keeper.ts";
import type { VaultContext } from "../../src/sdk/vault.ts";
import type { PrivateKeyAccount } from "viem/accounts";

export interface VaultTestNet {
  root: string;
  chain: LocalChain;
  rpc: ChainRpcServer;
  deployment: CloisterDeployment & { vault: `0x${string}` };
  reader: ReaderClient;
  writer(account: PrivateKeyAccount): WriterClient;
  owner: WriterClient;
  other: WriterClient;
  net: VaultNetwork;
  ctx: VaultContext;
  frames: { enclave: string; direction: string; frame: unknown }[];
  events: { host: number; event: VaultHostEvent }[];
  /** What each cluster's re-share keeper did (cluster index). */
  reshares: { cluster: number; event: VaultReshareEvent }[];
  /** Every byte the relays carried between enclaves (mutual-aTLS sessions). */
  carried: Uint8Array[];
  close(): Promise<void>;
}

export async function startVaultTestNet(options: { clusters?: number; size?: number; crawl?: boolean; pageSize?: number; pagesPerCall?: number } = {}): Promise<VaultTestNet> {
  const root = await mkdtemp(join(tmpdir(), "cloister-vault-"));
  const chain = await startLocalChain({ operators: 4 });
  const rpc = await startChainRpcServer({ provider: chain.provider });
  const endpoint = { provider: chain.provider };
  const writer = (account: PrivateKeyAccount) => createWriterClient({ endpoint, chain: chain.chain, account });
  const reader = createReaderClient({ endpoint, chain: chain.chain });
  const deployer = writer(chain.accounts.deployer);
  const deployment = (await deployCloister(deployer, { attester: chain.accounts.attester.address })) as VaultTestNet["deployment"];
  const frames: VaultTestNet["frames"] = [];
  const events: VaultTestNet["events"] = [];
  const reshares: VaultTestNet["reshares"] = [];
  const carried: Uint8Array[] = [];
  const net = await startVaultNetwork({
    rpcUrl: rpc.url,
    chainId: chain.chainId,
    reader,
    vault: deployment.vault,
    registry: deployment.registry,
    attester: writer(chain.accounts.attester),
    clusterAdmin: deployer,
    hostWriters: chain.accounts.operators.slice(0, 3).map(writer),
    clusters: options.clusters ?? 2,
    size: options.size ?? 5,
    dataDir: join(root, "enclaves"),
    pkiDir: join(root, "platform"),
    onFrame: (enclave, direction, frame) => frames.push({ enclave, direction, frame }),
    onEvent: (host, event) => events.push({ host, event }),
    onReshare: (cluster, event) => reshares.push({ cluster, event }),
    onCarried: (bytes) => carried.push(bytes),
    crawl: options.crawl ?? true,
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
    ...(options.pagesPerCall ? { pagesPerCall: options.pagesPerCall } : {}),
  });
  return {
    root,
    chain,
    rpc,
    deployment,
    reader,
    writer,
    owner: writer(chain.accounts.requester),
    other: writer(chain.accounts.operators[3]!),
    net,
    ctx: { reader, vault: deployment.vault, registry: deployment.registry, directory: net.directory },
    frames,
    events,
    reshares,
    carried,
    async close() {
      await net.close();
      await rpc.close();
      await chain.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
