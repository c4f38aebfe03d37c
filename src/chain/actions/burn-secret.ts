import type { Address } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Burns a secret token; the client's account must own it. */
export function burnSecret(client: WriterClient, vault: Address, tokenId: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "burn", { address: vault, abi: secretVaultAbi, functionName: "burn", args: [tokenId] });
}
