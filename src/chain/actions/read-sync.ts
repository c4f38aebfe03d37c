import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../abi/SecretVault.ts";

export interface SyncRecord {
  /** Slots whose current members confirmed the token's current version (a replaced slot's confirmations no longer count). */
  confirmedSlots: number[];
  /** All slots confirmed: SecretSynced was emitted for this version and the current members. */
  synced: boolean;
}

export async function readSync(client: Client, vault: Address, tokenId: bigint, cluster: bigint): Promise<SyncRecord> {
  const [mask, synced] = await readContract(client, { address: vault, abi: secretVaultAbi, functionName: "syncOf", args: [tokenId, cluster] });
  const confirmedSlots: number[] = [];
  for (let slot = 0; slot < 32; slot++) if ((mask >>> slot) & 1) confirmedSlots.push(slot);
  return { confirmedSlots, synced };
}
