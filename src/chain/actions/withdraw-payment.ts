import type { Address } from "viem";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

/** Claims payments the market could not push to the client's account (see TaskMarket.owed). */
export function withdrawPayment(client: WriterClient, market: Address): Promise<TxResult> {
  return sendContractTransaction(client, "withdraw", async () => {
    const { request } = await client.simulateContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "withdraw",
    });
    return client.writeContract(request);
  });
}
