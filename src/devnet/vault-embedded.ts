/**
 * A vault network in one process tree, for `cloister demo vault` and the
 * benchmark: an in-process chain served over HTTP on loopback (the vault
 * enclaves prove its state through it), the contracts, and C clusters of n
 * vault enclave processes. Needs no server.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PrivateKeyAccount } from "viem/accounts";
import { createReaderClient, createWriterClient, type ReaderClient, type WriterClient } from "../chain/clients.ts";
import { deployCloister } from "../chain/deploy.ts";
import { startLocalChain, type LocalChain } from "../chain/local-chain.ts";
import { startChainRpcServer } from "../chain/rpc-server.ts";
import type { VaultHostEvent } from "../host/vault-host.ts";
import type { VaultContext } from "../sdk/vault.ts";
import { DevnetError } from "./errors.ts";
import { startVaultNetwork, type VaultNetwork } from "./vault-network.ts";

export interface EmbeddedVault {
  chain: LocalChain;
  reader: ReaderClient;
  writer(account: PrivateKeyAccount): WriterClient;
  net: VaultNetwork;
  ctx: VaultContext;
  root: string;
  close(): Promise<void>;
}

/** `owners`: extra funded accounts (chain.accounts.operators[4..]) for clients that store in parallel. */
export async function startEmbeddedVault(o: { clusters: number; size?: number; owners?: number; onStep?: (m: string) => void; onEvent?: (host: number, e: VaultHostEvent) => void }): Promise<EmbeddedVault> {
  const root = await mkdtemp(join(tmpdir(), "cloister-vault-"));
  const chain = await startLocalChain({ operators: 4 + (o.owners ?? 0) });
  const rpc = await startChainRpcServer({ provider: chain.provider });
  const endpoint = { provider: chain.provider };
  const writer = (account: PrivateKeyAccount) => createWriterClient({ endpoint, chain: chain.chain, account });
  const reader = createReaderClient({ endpoint, chain: chain.chain });
  const deployer = writer(chain.accounts.deployer);
  const deployment = await deployCloister(deployer, { attester: chain.accounts.attester.address });
  if (!deployment.vault) throw new DevnetError("deployCloister deployed no SecretVault");
  o.onStep?.(`chain ${chain.chainId} on ${rpc.url}; SecretVault ${deployment.vault}, EnclaveRegistry ${deployment.registry}`);
  const net = await startVaultNetwork({
    rpcUrl: rpc.url,
    chainId: chain.chainId,
    reader,
    vault: deployment.vault,
    registry: deployment.registry,
    attester: writer(chain.accounts.attester),
    clusterAdmin: deployer,
    hostWriters: chain.accounts.operators.slice(0, 3).map(writer),
    clusters: o.clusters,
    size: o.size ?? 5,
    dataDir: join(root, "enclaves"),
    pkiDir: join(root, "platform"),
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
  });
  return {
    chain,
    reader,
    writer,
    net,
    root,
    ctx: { reader, vault: deployment.vault, registry: deployment.registry, directory: net.directory },
    async close() {
      await net.close();
      await rpc.close();
      await chain.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
