/** The conservation check itself: it balances for transactions inside the set and catches value that leaves it. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { parseEther } from "viem";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
import { checkConservation } from "./accounting.ts";

const chain = await startLocalChain({ operators: 1 });
after(() => chain.close());
const writer = (account: typeof chain.accounts.requester) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });

test("transfers inside the set balance out once fees are counted; value leaving the set is an imbalance", async () => {
  const requester = writer(chain.accounts.requester);
  const operator = chain.accounts.operators[0]!.address;
  const start = await requester.getBlockNumber({ cacheTime: 0 });
  await requester.waitForTransactionReceipt({ hash: await requester.sendTransaction({ to: operator, value: parseEther("1") }) });
  const inside = await requester.getBlockNumber({ cacheTime: 0 });
  const set = [chain.accounts.requester.address, operator];

  const balanced = await checkConservation(requester, set, start, inside);
  assert.equal(balanced.transactions, 1);
  assert.ok(balanced.fees > 0n, "the transfer paid a fee");
  assert.equal(balanced.imbalance, 0n);

  await requester.waitForTransactionReceipt({ hash: await requester.sendTransaction({ to: chain.accounts.deployer.address, value: 12345n }) });
  const leaked = await checkConservation(requester, set, start, await requester.getBlockNumber({ cacheTime: 0 }));
  assert.equal(leaked.transactions, 2);
  assert.equal(leaked.imbalance, 12345n, "value sent out of the set is reported as missing");
});
