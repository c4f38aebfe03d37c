/** The shared completion poller's negative paths (its normal path runs in every end-to-end task), and its wake-up by new heads. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { encodeAbiParameters, encodeEventTopics, getAbiItem, toHex, zeroAddress, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { createReaderClient } from "../../src/chain/clients.ts";
import type { Eip1193Provider } from "../../src/chain/eip1193.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
import { newHeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { CompletionWatcher } from "../../src/sdk/completion-watcher.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";

const chain = await startLocalChain({ operators: 0 });
after(() => chain.close());
const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });

test("a task that never completes times out with TASK_TIMEOUT, and a task id is awaited once at a time", async () => {
  const watcher = new CompletionWatcher({ reader, market: chain.accounts.deployer.address, pollIntervalMs: 5 });
  const waiting = watcher.wait(7n, 0n, 150);
  await assert.rejects(watcher.wait(7n, 0n, 150), RangeError);
  await assert.rejects(waiting, (e) => e instanceof TaskVerificationError && e.code === "TASK_TIMEOUT" && /task 7 /.test(e.message));
  // Once settled, the id may be awaited again.
  await assert.rejects(watcher.wait(7n, 0n, 20), (e) => e instanceof TaskVerificationError && e.code === "TASK_TIMEOUT");
});

test("with new heads pushed over WebSocket, a completion is found on its block, not at the next poll", { timeout: 15_000 }, async () => {
  const server = await startChainRpcServer({ provider: chain.provider });
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  const market = chain.accounts.deployer.address;
  const taskId = 42n;
  /** The block whose logs hold the task's TaskCompleted event (the chain's own logs are empty here). */
  let completedIn: bigint | undefined;
  const withCompletion: Eip1193Provider = {
    async request(args) {
      const result = await chain.provider.request(args);
      if (args.method !== "eth_getLogs" || completedIn === undefined) return result;
      const [filter] = args.params as [{ fromBlock: Hex; toBlock: Hex }];
      if (BigInt(filter.fromBlock) > completedIn || BigInt(filter.toBlock) < completedIn) return result;
      return [...(result as unknown[]), completionLog(market, taskId, completedIn)];
    },
  };
  const watcher = new CompletionWatcher({ reader: createReaderClient({ endpoint: { provider: withCompletion }, chain: chain.chain }), market, pollIntervalMs: 10_000, heads });
  try {
    await waitFor(() => heads.live);
    const waiting = watcher.wait(taskId, 0n, 5_000);
    // The first poll finds nothing; the next one is 10 s away unless a head arrives.
    await new Promise((r) => setTimeout(r, 50));
    completedIn = BigInt((await chain.provider.request({ method: "eth_blockNumber" })) as Hex) + 1n;
    await chain.provider.request({ method: "evm_mine", params: [] });
    const event = await waiting;
    assert.equal(event.outputCid, "bafy-output");
  } finally {
    await heads.close();
    await server.close();
  }
});

/** A TaskCompleted log as the market would emit it, encoded from the ABI. */
function completionLog(market: Hex, taskId: bigint, blockNumber: bigint) {
  const event = getAbiItem({ abi: taskMarketAbi, name: "TaskCompleted" });
  const data = event.inputs.filter((i) => !i.indexed);
  const sample = (type: string, name: string | undefined): unknown =>
    type === "string" ? (name === "outputCid" ? "bafy-output" : "bafy") : type === "address" ? zeroAddress : type.startsWith("bytes") ? toHex(1, { size: Number(type.slice(5)) }) : 1n;
  const indexedArgs = Object.fromEntries(event.inputs.filter((i) => i.indexed).map((i) => [i.name, i.name === "taskId" ? taskId : sample(i.type, i.name)]));
  return {
    address: market,
    topics: encodeEventTopics({ abi: taskMarketAbi, eventName: "TaskCompleted", args: indexedArgs as never }),
    data: encodeAbiParameters(data, data.map((i) => sample(i.type, i.name))),
    blockNumber: toHex(blockNumber),
    blockHash: toHex(1, { size: 32 }),
    transactionHash: toHex(2, { size: 32 }),
    transactionIndex: "0x0",
    logIndex: "0x0",
    removed: false,
  };
}

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
