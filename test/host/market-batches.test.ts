/**
 * A node's accept batches on the in-process chain: tasks another candidate took while the batch waited are
 * answered TaskTakenError from one status read, without a transaction; the open ones are accepted.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { toHex } from "viem";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { nodeMarketBatches, TaskTakenError } from "../../src/host/market-batches.ts";
import type { TaskSpec } from "../../src/protocol/task.ts";
import { makeSpec, newEnclave, registerWithOffer, startFixture, type Fixture, type TestEnclave } from "../contracts/fixture.ts";

let f: Fixture;
let a: TestEnclave;
let b: TestEnclave;

before(async () => {
  f = await startFixture();
  [a, b] = [newEnclave(), newEnclave()];
  await registerWithOffer(f, a, f.operators[0]!);
  await registerWithOffer(f, b, f.operators[1]!);
});
after(async () => {
  await f?.close();
});

let salt = 0;
async function submit(): Promise<{ taskId: bigint; spec: TaskSpec }> {
  const spec = makeSpec(f, [a.address, b.address]);
  const { taskId } = await submitTask(f.requester, f.deployment.market, { spec, salt: toHex(++salt, { size: 32 }) });
  return { taskId, spec };
}

test("accepts leave out the tasks another candidate took, and send no transaction for them", async () => {
  const tasks = [await submit(), await submit(), await submit(), await submit()];
  // a takes the first and the third before b's accepts go out.
  for (const i of [0, 2]) await acceptTask(f.operators[0]!, f.deployment.market, { ...tasks[i]!, enclave: a.address });
  const batches = nodeMarketBatches({ writer: f.operators[1]!, market: f.deployment.market, enclave: b.address });
  const operator = f.operators[1]!.account.address;
  const nonceBefore = await f.reader.getTransactionCount({ address: operator, blockTag: "latest" });

  // The first accept goes out alone at once; the other three wait for it and form one batch.
  const outcomes = await Promise.allSettled(tasks.map((t) => batches.accept(t)));

  for (const i of [0, 2]) {
    const taken = outcomes[i]!;
    assert.equal(taken.status, "rejected", `task ${i}`);
    const error = (taken as PromiseRejectedResult).reason as unknown;
    assert.ok(error instanceof TaskTakenError, `expected TaskTakenError, got ${String(error)}`);
    assert.match(error.message, /about to send its accept/);
  }
  for (const i of [1, 3]) {
    const accepted = outcomes[i]! as PromiseFulfilledResult<{ assignment: { enclave: string }; batchSize: number }>;
    assert.equal(accepted.status, "fulfilled", `task ${i}`);
    assert.equal(accepted.value.assignment.enclave.toLowerCase(), b.address.toLowerCase());
    assert.equal(accepted.value.batchSize, 2);
  }
  for (const t of tasks) assert.equal((await readTask(f.reader, f.deployment.market, t.taskId)).status, "Accepted");
  // One transaction: the batch's two open tasks; none for the taken two.
  assert.equal(await f.reader.getTransactionCount({ address: operator, blockTag: "latest" }), nonceBefore + 1);
});
