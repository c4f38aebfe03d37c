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

/**
 * Mints many secret tokens to the client's account in one transaction (SecretVault.storeBatch), as that many
 * `storeSecret` calls in order would. All or nothing: one item `store` would refuse reverts the whole call.
 */
export async function storeSecrets(client: WriterClient, vault: Address, items: readonly StoreSecretParams[]): Promise<TxResult & { tokenIds: bigint[] }> {
  const tx = await writeContractTransaction(
    client,
    "storeBatch",
    { address: vault, abi: secretVaultAbi, functionName: "storeBatch", args: [items.map((p) => ({ salt: p.salt, threshold: p.threshold, shares: p.shares, sharesRoot: p.sharesRoot }))] },
    { items: Math.max(1, items.length) },
  );
  return { ...tx, tokenIds: items.map((p) => secretTokenId(client.account.address, p.salt)) };
}
