import { encodeAbiParameters, hexToBigInt, keccak256, type Address, type Hex } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface StoreSecretParams {
  /** Any 32 bytes; with the owner's address it fixes the token id before the call (secretTokenId). */
  salt: Hex;
  threshold: number;
  shares: number;
  /** The commitment to the n shares that enclaves and the owner check shares against. */
  sharesRoot: Hex;
}

/** The token id SecretVault.store mints for `owner` and `salt`: keccak256(abi.encode(owner, salt)). */
export function secretTokenId(owner: Address, salt: Hex): bigint {
  return hexToBigInt(keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [owner, salt])));
}

/** Mints a secret token to the client's account and records its k-of-n split at version 1. */
export async function storeSecret(client: WriterClient, vault: Address, params: StoreSecretParams): Promise<TxResult & { tokenId: bigint }> {
  const tx = await writeContractTransaction(client, "store", {
    address: vault,
    abi: secretVaultAbi,
    functionName: "store",
    args: [params.salt, params.threshold, params.shares, params.sharesRoot],
  });
  return { ...tx, tokenId: secretTokenId(client.account.address, params.salt) };
}
