/** The market's admin settings: the per-task operator deposit and the category time references. */
import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export const categoryCount = 8;

export interface MarketConfig {
  /** Native currency an operator sends with each accept, returned at completion. */
  taskDeposit: bigint;
  /** Time reference (seconds) by category id; 0 = undefined category. */
  categoryTimeRefs: number[];
}

export async function readTaskDeposit(client: Client, market: Address): Promise<bigint> {
  return readContract(client, { address: market, abi: taskMarketAbi, functionName: "taskDeposit" });
}

export async function readMarketConfig(client: Client, market: Address): Promise<MarketConfig> {
  const [taskDeposit, categoryTimeRefs] = await Promise.all([
    readTaskDeposit(client, market),
    Promise.all(
      Array.from({ length: categoryCount }, (_, i) =>
        readContract(client, { address: market, abi: taskMarketAbi, functionName: "categoryTimeRef", args: [i] }),
      ),
    ),
  ]);
  return { taskDeposit, categoryTimeRefs };
}

/** Admin: sets a category's time reference in seconds (0 undefines it). */
export function setCategory(client: WriterClient, market: Address, category: number, timeRefSeconds: number): Promise<TxResult> {
  return writeContractTransaction(client, "setCategory", {
    address: market,
    abi: taskMarketAbi,
    functionName: "setCategory",
    args: [category, timeRefSeconds],
  });
}

/** Admin: sets the per-task operator deposit (wei, < 2^64); accepted tasks keep theirs. */
export function setTaskDeposit(client: WriterClient, market: Address, deposit: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "setTaskDeposit", {
    address: market,
    abi: taskMarketAbi,
    functionName: "setTaskDeposit",
    args: [deposit],
  });
}
