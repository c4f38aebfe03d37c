/** A node's offers: one per (enclave, payment token), posted by the enclave's operator. */
import type { Address, Client } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../abi/TaskMarket.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Mirrors `struct Offer`. */
export interface OfferTerms {
  /** Price per task in the offer's token (uint96). */
  price: bigint;
  /** CPU the enclave gives a task, thousandths of a core. */
  cpuMillis: number;
  memoryMb: number;
  /** The longest execution it accepts, seconds (>= 1). */
  maxDuration: number;
}

export interface PostOfferParams extends OfferTerms {
  enclave: Address;
  /** Zero address: native currency. */
  token: Address;
}

export function postOffer(client: WriterClient, market: Address, params: PostOfferParams): Promise<TxResult> {
  const { enclave, token, price, cpuMillis, memoryMb, maxDuration } = params;
  return writeContractTransaction(client, "postOffer", {
    address: market,
    abi: taskMarketAbi,
    functionName: "postOffer",
    args: [enclave, token, { price, cpuMillis, memoryMb, maxDuration }],
  });
}

export function withdrawOffer(client: WriterClient, market: Address, enclave: Address, token: Address): Promise<TxResult> {
  return writeContractTransaction(client, "withdrawOffer", {
    address: market,
    abi: taskMarketAbi,
    functionName: "withdrawOffer",
    args: [enclave, token],
  });
}

/** The enclave's offer in `token`, or undefined when it has none. */
export async function readOffer(client: Client, market: Address, enclave: Address, token: Address): Promise<OfferTerms | undefined> {
  const [price, cpuMillis, memoryMb, maxDuration] = await readContract(client, {
    address: market,
    abi: taskMarketAbi,
    functionName: "offers",
    args: [enclave, token],
  });
  return maxDuration === 0 ? undefined : { price, cpuMillis, memoryMb, maxDuration };
}
