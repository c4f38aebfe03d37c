import type { Address, Hex } from "viem";
import { secretVaultAbi } from "../abi/SecretVault.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface ReshareSecretParams {
  tokenId: bigint;
  /** The version being replaced (the current one). */
  version: bigint;
  newSharesRoot: Hex;
  cluster: bigint;
  /** At least the token's threshold, from distinct slots in ascending order (src/protocol/vault-contract.ts Reshare). */
  signatures: { slot: number; signature: Hex }[];
}

/** Relays a cluster's re-share of a token: new shares of the same secret, version + 1. */
export function reshareSecret(client: WriterClient, vault: Address, params: ReshareSecretParams): Promise<TxResult> {
  return writeContractTransaction(client, "reshare", {
    address: vault,
    abi: secretVaultAbi,
    functionName: "reshare",
    args: [params.tokenId, params.version, params.newSharesRoot, params.cluster, params.signatures],
  });
}
