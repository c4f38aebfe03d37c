import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

export interface ClusterRecord {
  cluster: bigint;
  /** 0 when the cluster does not exist. */
  size: number;
  /** Bumped by every member replacement; confirmations sign it. */
  epoch: number;
  /** The enclave at each slot. */
  members: Address[];
}

export async function readCluster(client: Client, vault: Address, cluster: bigint): Promise<ClusterRecord> {
  const [size, epoch, members] = await readContract(client, { address: vault, abi: secretVaultAbi, functionName: "clusterOf", args: [cluster] });
  return { cluster, size, epoch, members: [...members] };
}
