/** The shared completion poller's negative paths; its normal path runs in every end-to-end task. */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createReaderClient } from "../../src/chain/clients.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
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
