/**
 * Value conservation over a block range: the balances of a set of accounts
 * (requester, operators, the market's escrow) change only by the fees their
 * own transactions paid (gasUsed × effectiveGasPrice), as long as no value
 * crosses the set's border. A double payment, a lost refund or a deposit
 * left behind shows up as an imbalance.
 */
import type { Address, Client } from "viem";
import { getBalance, getBlock, getTransactionReceipt } from "viem/actions";

export interface Conservation {
  before: bigint;
  after: bigint;
  fees: bigint;
  /** before − after − fees: zero when value was conserved. */
  imbalance: bigint;
  transactions: number;
}

export async function sumBalances(reader: Client, accounts: Address[], blockNumber: bigint): Promise<bigint> {
  const balances = await Promise.all(accounts.map((address) => getBalance(reader, { address, blockNumber })));
  return balances.reduce((a, b) => a + b, 0n);
}

/** Checks blocks fromBlock+1 .. toBlock, `parallel` requests at a time. */
export async function checkConservation(reader: Client, accounts: Address[], fromBlock: bigint, toBlock: bigint, parallel = 16): Promise<Conservation> {
  const members = new Set(accounts.map((a) => a.toLowerCase()));
  const numbers: bigint[] = [];
  for (let n = fromBlock + 1n; n <= toBlock; n++) numbers.push(n);
  let fees = 0n;
  let transactions = 0;
  let next = 0;
  const worker = async () => {
    while (next < numbers.length) {
      const block = await getBlock(reader, { blockNumber: numbers[next++]!, includeTransactions: true });
      for (const tx of block.transactions) {
        if (!members.has(tx.from.toLowerCase())) continue;
        const receipt = await getTransactionReceipt(reader, { hash: tx.hash });
        fees += receipt.gasUsed * receipt.effectiveGasPrice;
        transactions++;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const [before, after] = await Promise.all([sumBalances(reader, accounts, fromBlock), sumBalances(reader, accounts, toBlock)]);
  return { before, after, fees, imbalance: before - after - fees, transactions };
}
