import type { Address, Hex } from "viem";
import type { TaskSpec } from "../../protocol/task.ts";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

export interface CompleteTaskParams {
  taskId: bigint;
  spec: TaskSpec;
  outputDigest: Hex;
  provenanceDigest: Hex;
  outputCid: string;
  provenanceCid: string;
  /** The accepted enclave's EIP-712 Completion signature (src/protocol/completion.ts). */
  signature: Hex;
}

/** Relays an enclave's completion proof; the reward goes to the operator who accepted, whoever sends it. */
export function completeTask(client: WriterClient, market: Address, params: CompleteTaskParams): Promise<TxResult> {
  return sendContractTransaction(client, "completeTask", async () => {
    const { request } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "completeTask",
      args: [
        params.taskId,
        params.spec,
        params.outputDigest,
        params.provenanceDigest,
        params.outputCid,
        params.provenanceCid,
        params.signature,
      ],
    });
    return client.writeContract(request);
  });
}
