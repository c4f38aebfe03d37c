import { parseEventLogs, type Address } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/**
 * Creates a vault cluster whose slot i is `members[i]` (each active in the
 * registry and in no cluster yet); the client's account needs CLUSTER_ADMIN_ROLE.
 */
export async function createCluster(client: WriterClient, vault: Address, members: readonly Address[]): Promise<TxResult & { cluster: bigint }> {
  const tx = await writeContractTransaction(client, "createCluster", { address: vault, abi: secretVaultAbi, functionName: "createCluster", args: [members] });
  const [event] = parseEventLogs({ abi: secretVaultAbi, logs: tx.receipt.logs, eventName: "ClusterCreated" });
  if (!event) throw new RangeError(`createCluster transaction ${tx.hash} emitted no ClusterCreated event`);
  return { ...tx, cluster: event.args.cluster };
}
