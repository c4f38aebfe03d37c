import type { Address, Hex } from "viem";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface ApproveParams {
  collaborationId: bigint;
  /** The approving party's account: the signer of the Approval. */
  party: Address;
  /** The nonce the Approval was signed with (the party's nonce on chain, readPartyState). */
  nonce: bigint;
  /** EIP-712 Approval (src/protocol/collaboration.ts) signed by `party`. */
  signature: Hex;
}

/** Sends `party`'s signed approval; the client may be any account (a relayer). */
export function approveCollaboration(client: WriterClient, contract: Address, params: ApproveParams): Promise<TxResult> {
  return writeContractTransaction(client, "approve", {
    address: contract,
    abi: collaborationsAbi,
    functionName: "approve",
    args: [params.collaborationId, params.party, params.nonce, params.signature],
  });
}
