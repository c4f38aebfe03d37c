/**
 * The vault part of `cloister devnet up --clusters C`: C clusters of 5 vault
 * enclave processes under one host in the devnet's own process (what fits a
 * 2-core machine), and the gateway owners' CLIs reach them through. The
 * deployer account is the cluster admin and relays confirmations; the
 * attester account registers the vault enclaves (see vault-network.ts).
 * Restarted on the same data dir, the enclaves unseal their keys and shares
 * and keep their clusters.
 */
import { join } from "node:path";
import { createReaderClient, createWriterClient } from "../chain/clients.ts";
import type { Deployment } from "../chain/deployment.ts";
import type { LocalChain } from "../chain/local-chain.ts";
import { startVaultHttpServer } from "../host/vault-http.ts";
import type { VaultReshareEvent } from "../host/vault-reshare-keeper.ts";
import { DevnetError } from "./errors.ts";
import { startVaultNetwork, type VaultClusterInfo, type VaultNetwork } from "./vault-network.ts";

export interface DevnetVault {
  url: string;
  clusters: VaultClusterInfo[];
  network: VaultNetwork;
  close(): Promise<void>;
}

export async function startDevnetVault(o: { chain: LocalChain; rpcUrl: string; deployment: Deployment; dataDir: string; simPkiDir: string; clusters: number; port: number; step: (m: string) => void }): Promise<DevnetVault> {
  if (!o.deployment.vault) throw new DevnetError("this devnet's deployment has no SecretVault; start a new --dir");
  const endpoint = { provider: o.chain.provider };
  const writer = (account: LocalChain["accounts"]["deployer"]) => createWriterClient({ endpoint, chain: o.chain.chain, account });
  const network = await startVaultNetwork({
    rpcUrl: o.rpcUrl,
    chainId: o.chain.chainId,
    reader: createReaderClient({ endpoint, chain: o.chain.chain }),
    vault: o.deployment.vault,
    registry: o.deployment.registry,
    attester: writer(o.chain.accounts.attester),
    clusterAdmin: writer(o.chain.accounts.deployer),
    hostWriters: [writer(o.chain.accounts.deployer)],
    sharedHost: true,
    clusters: o.clusters,
    dataDir: join(o.dataDir, "vault"),
    pkiDir: o.simPkiDir,
    fromBlock: o.deployment.deployBlock,
    onReshare: (c, e) => o.step(`vault cluster ${network.clusters[c]?.id ?? c}: ${describeReshare(e)}`),
  });
  const server = await startVaultHttpServer(network.directory, o.port, async ({ tokenId, cluster }) => {
    const index = network.clusters.findIndex((c) => c.id === cluster);
    if (index < 0) throw new DevnetError(`this devnet runs no vault cluster ${cluster} (it runs ${network.clusters.map((c) => c.id).join(", ")})`);
    return network.reshare(tokenId, index);
  });
  for (const c of network.clusters) o.step(`vault cluster ${c.id}: ${c.members.join(" ")}`);
  o.step(`vault gateway ${server.url}`);
  return {
    url: server.url,
    clusters: network.clusters,
    network,
    async close() {
      await server.close();
      await network.close();
    },
  };
}

function describeReshare(e: VaultReshareEvent): string {
  switch (e.type) {
    case "reshare-needed":
      return `slot ${e.slot} replaced at block ${e.block}; ${e.tokens} token(s) to re-share`;
    case "reshare-waiting":
      return `${e.tokens} token(s) wait: ${e.reason}`;
    case "reshared":
      return `token ${e.tokenId} re-shared at version ${e.version} (${e.left} left)`;
    case "reshare-failed":
      return `re-share${e.tokenId ? ` of token ${e.tokenId}` : " pass"} failed (${e.code}): ${e.message}; retried on the next pass`;
  }
}
