import type { Address, Hex } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** One slot enclave's signed confirmation (src/protocol/vault-contract.ts ShareConfirmation) as relayed. */
export interface SignedShareConfirmation {
  cluster: bigint;
  slot: number;
  shares: { tokenId: bigint; version: bigint }[];
  signature: Hex;
}

/**
 * Relays slot enclaves' confirmations (SecretVault.confirm): any account may
 * send them. All or nothing: one that cannot be recorded, including one
 * already recorded, reverts the call with its own error.
 */
export function confirmShares(client: WriterClient, vault: Address, items: readonly SignedShareConfirmation[]): Promise<TxResult> {
  const shares = items.reduce((sum, item) => sum + item.shares.length, 0);
  // Gas is learned per item and scaled by the item count: an enclave's signature (ecrecover, registry call, about
  // 40,000 gas) weighs as two tokens, so a one-token call does not teach a per-token cost that, scaled to a
  // batch of a thousand tokens, passes the block's gas limit.
  // Unsimulated once its gas is learned: the node runs each batch once, not twice. A batch that reverts (a
  // confirmation relayed before a crash) is rare, and the vault host recovers from it.
  return writeContractTransaction(client, "confirm", { address: vault, abi: secretVaultAbi, functionName: "confirm", args: [items] }, { items: shares + 2 * items.length, simulate: false });
}
