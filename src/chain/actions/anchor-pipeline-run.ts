import type { Address, Hex } from "viem";
import type { RunAnchor } from "../../protocol/pipelines.ts";
import { pipelinesAbi } from "../abi/Pipelines.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Anchors one run of `pipelineId`: `signature` is a candidate enclave's EIP-712 Run over `anchor`. */
export function anchorPipelineRun(client: WriterClient, contract: Address, pipelineId: bigint, anchor: RunAnchor, signature: Hex): Promise<TxResult> {
  return writeContractTransaction(client, "recordRun", {
    address: contract,
    abi: pipelinesAbi,
    functionName: "recordRun",
    args: [pipelineId, anchor, signature],
  });
}
