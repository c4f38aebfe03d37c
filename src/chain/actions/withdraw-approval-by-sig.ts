import type { Address, Hex } from "viem";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface WithdrawBySigParams {
  collaborationId: bigint;
  /** The withdrawing party's account: the signer of the Withdrawal. */
  party: Address;
  /** The party's nonce on chain the Withdrawal was signed with (readPartyState). */
  nonce: bigint;
  /** EIP-712 Withdrawal (src/protocol/collaboration.ts) signed by `party`. */
  signature: Hex;
}

/** Sends `party`'s signed withdrawal; the client may be any account (a relayer). */
export function withdrawApprovalBySig(client: WriterClient, contract: Address, params: WithdrawBySigParams): Promise<TxResult> {
  return writeContractTransaction(client, "withdrawApprovalBySig", {
    address: contract,
    abi: collaborationsAbi,
    functionName: "withdrawApprovalBySig",
    args: [params.collaborationId, params.party, params.nonce, params.signature],
  });
}
