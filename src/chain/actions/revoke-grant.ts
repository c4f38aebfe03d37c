import type { Address, Hex } from "viem";
import { grantsAbi } from "../abi/Grants.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** The client's account, the grant's owner, revokes `grantId`: every later use is refused. */
export function revokeGrant(client: WriterClient, contract: Address, grantId: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "revokeGrant", { address: contract, abi: grantsAbi, functionName: "revokeGrant", args: [grantId] });
}

/** The client's account voids a grant it signed with `salt` that nobody relayed yet (the id is taken, revoked). */
export function cancelSignedGrant(client: WriterClient, contract: Address, salt: Hex): Promise<TxResult> {
  return writeContractTransaction(client, "cancelSignedGrant", { address: contract, abi: grantsAbi, functionName: "cancelSignedGrant", args: [salt] });
}
