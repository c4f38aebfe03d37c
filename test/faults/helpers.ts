/** Chain bookkeeping and waiting for the fault tests. */
import type { Address, Client } from "viem";
import { getBalance, getBlock, getContractEvents, getTransactionReceipt } from "viem/actions";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until<T>(find: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Native currency `account` sent in blocks from..to: every fee, plus the value of its transactions that succeeded. */
export async function spentBy(reader: Client, account: Address, fromBlock: bigint, toBlock: bigint): Promise<bigint> {
  let spent = 0n;
  for (let n = fromBlock; n <= toBlock; n++) {
    const block = await getBlock(reader, { blockNumber: n, includeTransactions: true });
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== account.toLowerCase()) continue;
      const receipt = await getTransactionReceipt(reader, { hash: tx.hash });
      spent += receipt.gasUsed * receipt.effectiveGasPrice + (receipt.status === "success" ? tx.value : 0n);
    }
  }
  return spent;
}

/**
 * What `account` received in blocks from..to: its balance change plus what it spent. It isolates payments
 * (which arrive as internal transfers) from the account's own transactions.
 */
export async function receivedBy(reader: Client, account: Address, before: { block: bigint; balance: bigint }, toBlock: bigint): Promise<bigint> {
  const after = await getBalance(reader, { address: account, blockNumber: toBlock });
  return after - before.balance + (await spentBy(reader, account, before.block + 1n, toBlock));
}

/** Every market event of one task from `fromBlock` on, by name. */
export async function taskEvents(reader: Client, market: Address, taskId: bigint, fromBlock: bigint) {
  const filter = { address: market, abi: taskMarketAbi, args: { taskId }, fromBlock, strict: true } as const;
  const [accepted, reopened, completed, refunded] = await Promise.all([
    getContractEvents(reader, { ...filter, eventName: "TaskAccepted" }),
    getContractEvents(reader, { ...filter, eventName: "TaskReopened" }),
    getContractEvents(reader, { ...filter, eventName: "TaskCompleted" }),
    getContractEvents(reader, { ...filter, eventName: "TaskRefunded" }),
  ]);
  return { accepted, reopened, completed, refunded };
}
