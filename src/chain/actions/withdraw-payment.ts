import { zeroAddress, type Address } from "viem";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/**
 * Claims payments in `token` (zero address: native) the market could not push to the client's account
 * (TaskMarket.owed), to the account itself or to `to` (for an account that cannot receive them).
 */
export function withdrawPayment(client: WriterClient, market: Address, token: Address = zeroAddress, to?: Address): Promise<TxResult> {
  if (to !== undefined) {
    return writeContractTransaction(client, "withdrawTo", { address: market, abi: taskMarketAbi, functionName: "withdrawTo", args: [token, to] });
  }
  return writeContractTransaction(client, "withdraw", { address: market, abi: taskMarketAbi, functionName: "withdraw", args: [token] });
}
