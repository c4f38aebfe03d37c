/**
 * Transaction fees, fetched once per client and reused for a short while
 * instead of twice per transaction. The cap is twice the base fee plus the
 * tip: the base fee can rise by at most 12.5% per block, so the cap stays
 * above it for several blocks while the tip is what is actually paid over the
 * base fee.
 */
import type { Client } from "viem";
import { estimateMaxPriorityFeePerGas, getBlock, getGasPrice } from "viem/actions";

export type Fees = { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: "legacy"; gasPrice: bigint };

/** How long fetched fees are reused: about a block on a public chain; on a local chain the base fee only falls. */
export const feeTtlMs = 2_000;

const cache = new WeakMap<Client, { at: number; fees: Promise<Fees> }>();

async function fetchFees(client: Client): Promise<Fees> {
  const block = await getBlock(client, { blockTag: "latest" });
  if (block.baseFeePerGas === null) return { type: "legacy", gasPrice: ((await getGasPrice(client)) * 6n) / 5n };
  const maxPriorityFeePerGas = await estimateMaxPriorityFeePerGas(client);
  return { type: "eip1559", maxFeePerGas: 2n * block.baseFeePerGas + maxPriorityFeePerGas, maxPriorityFeePerGas };
}

export function cachedFees(client: Client): Promise<Fees> {
  const entry = cache.get(client);
  if (entry && performance.now() - entry.at < feeTtlMs) return entry.fees;
  const fees = fetchFees(client);
  cache.set(client, { at: performance.now(), fees });
  // A failed fetch is not cached.
  fees.catch(() => {
    if (cache.get(client)?.fees === fees) cache.delete(client);
  });
  return fees;
}

/** Drops the cached fees (after the chain refused a transaction's fees). */
export function forgetFees(client: Client): void {
  cache.delete(client);
}
