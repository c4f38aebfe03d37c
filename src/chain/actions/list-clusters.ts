import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import { readCluster, type ClusterRecord } from "./read-cluster.ts";

/** Every cluster of the vault, ids 1..clusterCount. */
export async function listClusters(client: Client, vault: Address): Promise<ClusterRecord[]> {
  const count = await readContract(client, { address: vault, abi: secretVaultAbi, functionName: "clusterCount" });
  const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
  return Promise.all(ids.map((id) => readCluster(client, vault, id)));
}
