import type { Address } from "viem";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

/** Past the deadline, refunds an open or accepted task to its requester. Anyone may send it. */
export function reclaimExpired(client: WriterClient, market: Address, taskId: bigint): Promise<TxResult> {
  return sendContractTransaction(client, "reclaimExpired", async () => {
    const { request } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "reclaimExpired",
      args: [taskId],
    });
    return client.writeContract(request);
  });
}
