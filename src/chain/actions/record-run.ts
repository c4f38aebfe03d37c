import type { Address, Hex } from "viem";
import type { RunReport } from "../../protocol/collaboration.ts";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Records a run of `collaborationId`: `signature` is the compute enclave's EIP-712 Run over `report`. */
export function recordRun(client: WriterClient, contract: Address, collaborationId: bigint, report: RunReport, signature: Hex): Promise<TxResult> {
  return writeContractTransaction(client, "recordRun", {
    address: contract,
    abi: collaborationsAbi,
    functionName: "recordRun",
    args: [collaborationId, report, signature],
  });
}
