/** A client waiting on a task learns at once when the task ends without a result: refunded or cancelled. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { cancelTask } from "../../src/chain/actions/cancel-task.ts";
import { reopenTask } from "../../src/chain/actions/reopen-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { CompletionWatcher } from "../../src/sdk/completion-watcher.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";
import { advanceTime, makeSpec, newEnclave, registerWithOffer, startFixture, type Fixture } from "../contracts/fixture.ts";

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(() => f?.close());

/** Long enough that only the task's end, not the timeout, can settle the wait within the test's own timeout. */
const WAIT_MS = 60_000;

test("a task cancelled by its requester fails the wait with TASK_CANCELLED, not at the timeout", { timeout: 15_000 }, async () => {
  const spec = makeSpec(f, []);
  const { taskId, receipt } = await submitTask(f.requester, f.deployment.market, { spec });
  const watcher = new CompletionWatcher({ reader: f.reader, market: f.deployment.market, pollIntervalMs: 5 });
  const waiting = watcher.wait(taskId, receipt.blockNumber, WAIT_MS);
  const cancelled = await cancelTask(f.requester, f.deployment.market, taskId, spec);
  await assert.rejects(waiting, (e) => e instanceof TaskVerificationError && e.code === "TASK_CANCELLED" && e.message.includes(cancelled.hash) && e.message.includes(`task ${taskId} `));
});

test("a task refunded after its last attempt missed the deadline fails the wait with TASK_REFUNDED", { timeout: 15_000 }, async () => {
  const enclave = newEnclave();
  const operator = f.operators[0]!;
  await registerWithOffer(f, enclave, operator);
  const spec = makeSpec(f, [enclave.address], { maxAttempts: 1 });
  const { taskId, receipt } = await submitTask(f.requester, f.deployment.market, { spec });
  const watcher = new CompletionWatcher({ reader: f.reader, market: f.deployment.market, pollIntervalMs: 5 });
  const waiting = watcher.wait(taskId, receipt.blockNumber, WAIT_MS);
  const accepted = await acceptTask(operator, f.deployment.market, { taskId, spec, enclave: enclave.address });
  await advanceTime(f, 3_600n);
  const refunded = await reopenTask(f.requester, f.deployment.market, { taskId, spec, assignment: accepted.assignment });
  assert.equal(refunded.outcome, "refunded");
  await assert.rejects(waiting, (e) => e instanceof TaskVerificationError && e.code === "TASK_REFUNDED" && e.message.includes(refunded.hash) && /missed its deadline/.test(e.message));
});

test("a task that ended in a block the client's follower had already read is found: a new waiter rewinds it", { timeout: 15_000 }, async () => {
  const watcher = new CompletionWatcher({ reader: f.reader, market: f.deployment.market, pollIntervalMs: 5 });
  // A first task that never ends keeps the follower reading past the second one's end.
  const first = await submitTask(f.requester, f.deployment.market, { spec: makeSpec(f, []) });
  const waitingFirst = watcher.wait(first.taskId, first.receipt.blockNumber, 2_000);
  const spec = makeSpec(f, []);
  const { taskId, receipt } = await submitTask(f.requester, f.deployment.market, { spec });
  const cancelled = await cancelTask(f.requester, f.deployment.market, taskId, spec);
  await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(watcher.wait(taskId, receipt.blockNumber, WAIT_MS), (e) => e instanceof TaskVerificationError && e.code === "TASK_CANCELLED" && e.message.includes(cancelled.hash));
  await assert.rejects(waitingFirst, (e) => e instanceof TaskVerificationError && e.code === "TASK_TIMEOUT");
});
