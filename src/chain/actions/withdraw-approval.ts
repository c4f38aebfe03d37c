import type { Address } from "viem";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/**
 * The client's account, a party, withdraws its approval of `collaborationId` (runs are refused until it approves
 * again); it also voids any approval it signed that nobody relayed yet.
 */
export function withdrawApproval(client: WriterClient, contract: Address, collaborationId: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "withdrawApproval", {
    address: contract,
    abi: collaborationsAbi,
    functionName: "withdrawApproval",
    args: [collaborationId],
  });
}
