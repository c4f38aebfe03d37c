import type { Address } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/**
 * Puts `enclave` at `slot` of `cluster` and bumps the cluster's epoch (that
 * slot's confirmations stop counting: its new member confirms again, the other
 * slots' stay); the client's account needs CLUSTER_ADMIN_ROLE.
 */
export function replaceClusterMember(client: WriterClient, vault: Address, cluster: bigint, slot: number, enclave: Address): Promise<TxResult> {
  return writeContractTransaction(client, "replaceMember", { address: vault, abi: secretVaultAbi, functionName: "replaceMember", args: [cluster, slot, enclave] });
}
