/** The shared completion poller's negative paths (its normal path runs in every end-to-end task), and its wake-up by new heads. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { completeTask } from "../../src/chain/actions/complete-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { createReaderClient } from "../../src/chain/clients.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
import { newHeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { CompletionWatcher } from "../../src/sdk/completion-watcher.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";
import { makeSpec, newEnclave, registerWithOffer, signedCompletion, startFixture } from "../contracts/fixture.ts";

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
  const f = await startFixture();
  const server = await startChainRpcServer({ provider: f.chain.provider });
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  try {
    const operator = f.operators[0]!;
    const enclave = newEnclave();
    await registerWithOffer(f, enclave, operator);
    const spec = makeSpec(f, [enclave.address]);
    const submitted = await submitTask(f.requester, f.deployment.market, { spec });
    const { assignment } = await acceptTask(operator, f.deployment.market, { taskId: submitted.taskId, spec, enclave: enclave.address });
    const watcher = new CompletionWatcher({ reader: f.reader, market: f.deployment.market, pollIntervalMs: 10_000, heads });
    await waitFor(() => heads.live);
    const waiting = watcher.wait(submitted.taskId, submitted.receipt.blockNumber, 5_000);
    // The first poll finds nothing; the next one is 10 s away unless a head arrives (and its bloom may hold the completion).
    await new Promise((r) => setTimeout(r, 50));
    const completion = await signedCompletion(f, submitted.taskId, spec, assignment, enclave);
    const completed = await completeTask(operator, f.deployment.market, completion);
    const event = await waiting;
    assert.equal(event.outputCid, completion.outputCid);
    assert.equal(event.transactionHash, completed.hash);
  } finally {
    await heads.close();
    await server.close();
    await f.close();
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
