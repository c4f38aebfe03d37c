import type { Address } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Transfers a secret token (ERC-721 safeTransferFrom) from the client's account to `to`; the record and shares stay. */
export function transferSecret(client: WriterClient, vault: Address, tokenId: bigint, to: Address): Promise<TxResult> {
  return writeContractTransaction(client, "transfer", {
    address: vault,
    abi: secretVaultAbi,
    functionName: "safeTransferFrom",
    args: [client.account.address, to, tokenId],
  });
}
