/**
 * Load (bounded): 500 echo tasks submitted at once through one SDK client to
 * a 3-node multi-process devnet. Every task completes exactly once, with the
 * right output, after exactly one accept; and the value of the requester, the
 * operators and the market (escrow and deposits) is conserved up to the fees
 * their transactions paid.
 *
 * One requester account submits everything: the client serializes its submit
 * transactions (one nonce sequence) while encryption, IPFS uploads, waiting
 * and verification run concurrently. LOAD_TASKS overrides the task count.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parseEventLogs, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { getLogs } from "viem/actions";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { connectToNetwork } from "../../src/devnet/remote-client.ts";
import { startMultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import { checkConservation } from "./accounting.ts";

const TASKS = Number(process.env.LOAD_TASKS ?? 500);
const echo = new Uint8Array(await readFile(new URL("../../examples/echo.js", import.meta.url)));
const dir = await mkdtemp(join(tmpdir(), "cloister-load-"));
after(() => rm(dir, { recursive: true, force: true }));

test(`${TASKS} tasks submitted at once to a 3-node devnet each complete exactly once, and value is conserved`, { timeout: 300_000 }, async () => {
  const devnet = await startMultiProcessDevnet({ dataDir: dir, nodes: 3 });
  const remote = await connectToNetwork({ rpcUrl: devnet.rpcUrl, ipfsUrl: devnet.ipfsUrl, deployment: devnet.deployment, manifest: devnet.manifest, privateKey: devnet.requesterKey });
  try {
    const reader = remote.writer;
    const market = devnet.deployment.market;
    const accounts: Address[] = [privateKeyToAccount(devnet.requesterKey).address, ...devnet.nodes.map((n) => n.operator as Address), market];
    const startBlock = await reader.getBlockNumber({ cacheTime: 0 });

    const started = performance.now();
    const inputs = Array.from({ length: TASKS }, (_, i) => `load task ${i}`);
    const results = await Promise.all(inputs.map((input) => remote.client.runTask({ program: echo, input: new TextEncoder().encode(input), timeoutMs: 240_000 })));
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`# ${TASKS} tasks in ${seconds.toFixed(1)} s (${(TASKS / seconds).toFixed(1)} tasks/s)\n`);
    const endBlock = await reader.getBlockNumber({ cacheTime: 0 });

    results.forEach((r, i) => assert.equal(new TextDecoder().decode(r.output), inputs[i], `task ${i} returned its own input`));
    const ids = new Set(results.map((r) => r.taskId));
    assert.equal(ids.size, TASKS, "every task has its own id");

    const logs = parseEventLogs({ abi: taskMarketAbi, logs: await getLogs(reader, { address: market, fromBlock: startBlock + 1n, toBlock: endBlock }) });
    const count = (name: string) => {
      const perTask = new Map<bigint, number>();
      for (const log of logs) if (log.eventName === name) perTask.set((log.args as { taskId: bigint }).taskId, (perTask.get((log.args as { taskId: bigint }).taskId) ?? 0) + 1);
      return perTask;
    };
    for (const [name, expected] of [["TaskSubmitted", 1], ["TaskAccepted", 1], ["TaskCompleted", 1]] as const) {
      const perTask = count(name);
      assert.equal(perTask.size, TASKS, `a ${name} event for every task`);
      for (const id of ids) assert.equal(perTask.get(id), expected, `task ${id}: ${perTask.get(id)} ${name} events`);
    }
    const others = logs.filter((l) => ["TaskReopened", "TaskRefunded", "TaskCancelled", "PaymentDeferred"].includes(l.eventName));
    assert.deepEqual(others.map((l) => l.eventName), [], "no task was reopened, refunded or cancelled, and no payment was deferred");

    const value = await checkConservation(reader, accounts, startBlock, endBlock);
    // Every transaction that carried a task's submit, accept or completion paid a fee that was counted (batches carry
    // several tasks each; accepts that lost a race and reverted were paid for too).
    const carriers = new Set(logs.filter((l) => ["TaskSubmitted", "TaskAccepted", "TaskCompleted"].includes(l.eventName)).map((l) => l.transactionHash));
    assert.ok(value.transactions >= carriers.size, `${value.transactions} fee-paying transactions counted, ${carriers.size} carried task events`);
    assert.equal(value.imbalance, 0n, `balances + escrow before ${value.before}, after ${value.after}, fees ${value.fees}`);
    assert.equal(await reader.getBalance({ address: market, blockNumber: endBlock }), await reader.getBalance({ address: market, blockNumber: startBlock }), "no escrow or deposit is left in the market");
  } finally {
    await remote.close();
    await devnet.close();
  }
});
