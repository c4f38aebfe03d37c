import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseEventLogs, toHex, type Address, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { testTokenAbi } from "../../src/chain/abi/TestToken.ts";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { acceptTasks } from "../../src/chain/actions/accept-tasks.ts";
import { completeTask } from "../../src/chain/actions/complete-task.ts";
import { completeTasks } from "../../src/chain/actions/complete-tasks.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { readTasks } from "../../src/chain/actions/read-tasks.ts";
import { writeContractTransaction } from "../../src/chain/actions/send-transaction.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { submitTasks } from "../../src/chain/actions/submit-tasks.ts";
import { approveToken, readTokenBalance } from "../../src/chain/actions/token.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { defaultTaskDeposit, deployTestToken } from "../../src/chain/deploy.ts";
import { computeTaskId, taskCommitment, type Assignment, type TaskSpec } from "../../src/protocol/task.ts";
import {
  defaultOffer,
  feeOf,
  makeSpec,
  newEnclave,
  registerWithOffer,
  rejectsWith,
  signedCompletion,
  startFixture,
  type Fixture,
  type TestEnclave,
} from "./fixture.ts";

function randomSalt(): Hex {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

describe("TaskMarket batches", () => {
  let f: Fixture;
  let operator: WriterClient;
  let market: Address;
  let enclave: TestEnclave;

  before(async () => {
    f = await startFixture();
    operator = f.operators[0]!;
    market = f.deployment.market;
    enclave = newEnclave();
    await registerWithOffer(f, enclave, operator);
  });
  after(() => f.close());

  const balance = (address: Address) => f.reader.getBalance({ address });

  /** `n` native-currency specs for `enclave`; every other one escrows twice the price, so completion refunds the rest. */
  function specItems(n: number, overrides: Partial<TaskSpec> = {}) {
    return Array.from({ length: n }, (_, i) => ({
      spec: makeSpec(f, [enclave.address], { maxPrice: i % 2 === 0 ? defaultOffer.price : 2n * defaultOffer.price, ...overrides }),
      salt: randomSalt(),
    }));
  }

  const completion = (taskId: bigint, spec: TaskSpec, assignment: Assignment, signer: TestEnclave) => signedCompletion(f, taskId, spec, assignment, signer);

  /** Submits `n` specs in one batch and accepts them in another; returns the tasks with their assignments. */
  async function acceptedBatch(n: number) {
    const items = specItems(n);
    const { taskIds } = await submitTasks(f.requester, market, { items });
    const tasks = items.map((item, i) => ({ taskId: taskIds[i]!, spec: item.spec }));
    const { accepted } = await acceptTasks(operator, market, { tasks, enclave: enclave.address });
    return tasks.map((task, i) => ({ ...task, assignment: accepted[i]!.assignment }));
  }

  /** Submit, accept and complete `n` tasks, one batch transaction each; the per-task gas of each step. */
  async function batchLifecycle(n: number) {
    const items = specItems(n);
    const submitted = await submitTasks(f.requester, market, { items });
    const tasks = items.map((item, i) => ({ taskId: submitted.taskIds[i]!, spec: item.spec }));
    const accepted = await acceptTasks(operator, market, { tasks, enclave: enclave.address });
    const proofs = await Promise.all(tasks.map((task, i) => completion(task.taskId, task.spec, accepted.accepted[i]!.assignment, enclave)));
    const completed = await completeTasks(operator, market, { items: proofs });
    const perTask = (gas: bigint) => gas / BigInt(n);
    return {
      submit: perTask(submitted.gasUsed),
      accept: perTask(accepted.gasUsed),
      complete: perTask(completed.gasUsed),
      total: perTask(submitted.gasUsed + accepted.gasUsed + completed.gasUsed),
    };
  }

  async function singleLifecycle() {
    const { spec, salt } = specItems(1)[0]!;
    const submitted = await submitTask(f.requester, market, { spec, salt });
    const accepted = await acceptTask(operator, market, { taskId: submitted.taskId, spec, enclave: enclave.address });
    const completed = await completeTask(operator, market, await completion(submitted.taskId, spec, accepted.assignment, enclave));
    return submitted.gasUsed + accepted.gasUsed + completed.gasUsed;
  }

  for (const n of [1, 5, 20]) {
    test(`a batch of ${n}: submit, accept and complete move every task and pay as the single calls do`, async () => {
      const requester = f.requester.account.address;
      const [requesterBefore, operatorBefore, marketBefore] = await Promise.all([balance(requester), balance(operator.account.address), balance(market)]);
      const items = specItems(n);
      const escrow = items.reduce((sum, item) => sum + item.spec.maxPrice, 0n);

      const submitted = await submitTasks(f.requester, market, { items });
      assert.deepEqual(submitted.taskIds, items.map((item) => computeTaskId(BigInt(f.chain.chainId), market, requester, item.salt)), "ids in item order");
      const submittedEvents = parseEventLogs({ abi: taskMarketAbi, logs: submitted.receipt.logs, eventName: "TaskSubmitted" });
      assert.deepEqual(submittedEvents.map((e) => e.args.spec), items.map((item) => item.spec));
      assert.equal(await balance(market), marketBefore + escrow);
      const open = await readTasks(f.reader, market, submitted.taskIds);
      assert.deepEqual(open, items.map((item, i) => ({ taskId: submitted.taskIds[i]!, status: "Open", attempt: 0, deadline: 0n, commitment: taskCommitment(item.spec) })));

      const tasks = items.map((item, i) => ({ taskId: submitted.taskIds[i]!, spec: item.spec }));
      const accepted = await acceptTasks(operator, market, { tasks, enclave: enclave.address });
      const acceptedAt = (await f.reader.getBlock({ blockNumber: accepted.receipt.blockNumber })).timestamp;
      const assignment = { enclave: enclave.address, operator: operator.account.address, price: defaultOffer.price, deposit: defaultTaskDeposit };
      assert.deepEqual(accepted.accepted, submitted.taskIds.map((taskId) => ({ taskId, assignment, attempt: 1, deadline: acceptedAt + 600n })));
      assert.equal(await balance(market), marketBefore + escrow + BigInt(n) * defaultTaskDeposit);
      const acceptedRecords = await readTasks(f.reader, market, submitted.taskIds);
      assert.deepEqual(acceptedRecords.map((r) => [r.status, r.commitment]), items.map((item) => ["Accepted", taskCommitment(item.spec, assignment)]));

      // A relayer sends the proofs; the operator who accepted is paid.
      const proofs = await Promise.all(tasks.map((task) => completion(task.taskId, task.spec, assignment, enclave)));
      const completed = await completeTasks(f.operators[1]!, market, { items: proofs });
      const completedEvents = parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "TaskCompleted" });
      assert.deepEqual(
        completedEvents.map((e) => [e.args.taskId, e.args.operator, e.args.outputDigest, e.args.price]),
        proofs.map((p) => [p.taskId, operator.account.address, p.outputDigest, defaultOffer.price]),
      );
      assert.ok((await readTasks(f.reader, market, submitted.taskIds)).every((r) => r.status === "Completed"));
      assert.equal(await balance(market), marketBefore, "escrow and deposits left the market");
      assert.equal(await balance(operator.account.address), operatorBefore + BigInt(n) * defaultOffer.price - feeOf(accepted.receipt));
      assert.equal(await balance(requester), requesterBefore - BigInt(n) * defaultOffer.price - feeOf(submitted.receipt));
      await rejectsWith(completeTasks(operator, market, { items: proofs }), "TaskNotAccepted");
    });
  }

  test("gas: per-task gas falls with the batch size, and a 10-batch lifecycle costs less per task than single calls", async (t) => {
    await singleLifecycle(); // warm-up: the first use of an account or slot costs more
    await batchLifecycle(1);
    const single = await singleLifecycle();
    t.diagnostic(`single-task calls: lifecycle=${single} gas per task`);
    const perTask = new Map<number, Awaited<ReturnType<typeof batchLifecycle>>>();
    for (const n of [1, 10, 50]) {
      const gas = await batchLifecycle(n);
      perTask.set(n, gas);
      t.diagnostic(`batch of ${n}: per task submit=${gas.submit} accept=${gas.accept} complete=${gas.complete} lifecycle=${gas.total}`);
    }
    const ten = perTask.get(10)!.total;
    assert.ok(ten < single, `a 10-batch lifecycle costs ${ten} gas per task, single calls ${single}`);
    assert.ok(perTask.get(50)!.total < ten, "a 50-batch costs less per task than a 10-batch");
  });

  test("a batch mixing ERC-20 and native tasks, operators and requesters pays everyone as single completions would", async () => {
    const token = await deployTestToken(f.deployer);
    const requester = f.requester.account.address;
    const mint = await f.requester.writeContract({ address: token, abi: testTokenAbi, functionName: "mint", args: [requester, 10n ** 21n] });
    await f.requester.waitForTransactionReceipt({ hash: mint });
    const tokenPrice = 7n * 10n ** 18n;
    await registerWithOffer(f, enclave, operator, { token, price: tokenPrice });
    const other = newEnclave();
    const otherOperator = f.operators[2]!;
    await registerWithOffer(f, other, otherOperator);
    await registerWithOffer(f, other, otherOperator, { token, price: tokenPrice });

    // native, token, token, native: the ERC-20 escrow is one run, the native escrow the value.
    const tokenSpec = () => makeSpec(f, [], { token, maxPrice: 10n ** 19n });
    const items = [makeSpec(f, []), tokenSpec(), tokenSpec(), makeSpec(f, [])].map((spec) => ({ spec, salt: randomSalt() }));
    await approveToken(f.requester, token, market, 2n * 10n ** 19n);
    const nativeBefore = await balance(requester);
    const submitted = await submitTasks(f.requester, market, { items });
    assert.equal(await readTokenBalance(f.reader, token, market), 2n * 10n ** 19n);
    assert.equal(await balance(requester), nativeBefore - 2n * 10n ** 17n - feeOf(submitted.receipt));

    // Tasks 0 and 1 go to `operator`, 2 and 3 to `otherOperator`; completions interleave them.
    const tasks = items.map((item, i) => ({ taskId: submitted.taskIds[i]!, spec: item.spec }));
    const first = await acceptTasks(operator, market, { tasks: tasks.slice(0, 2), enclave: enclave.address });
    const second = await acceptTasks(otherOperator, market, { tasks: tasks.slice(2), enclave: other.address });
    const assignments = [...first.accepted, ...second.accepted].map((a) => a.assignment);
    const signers = [enclave, enclave, other, other];
    const proofs = await Promise.all([0, 2, 1, 3].map((i) => completion(tasks[i]!.taskId, tasks[i]!.spec, assignments[i]!, signers[i]!)));

    const operators = [operator.account.address, otherOperator.account.address];
    const nativeOf = () => Promise.all([requester, ...operators].map(balance));
    const tokensOf = () => Promise.all([requester, ...operators, market].map((a) => readTokenBalance(f.reader, token, a)));
    const [nativeStart, tokensStart] = [await nativeOf(), await tokensOf()];
    const completed = await completeTasks(f.operators[1]!, market, { items: proofs });
    const [nativeEnd, tokensEnd] = [await nativeOf(), await tokensOf()];

    const nativeRefund = 10n ** 17n - defaultOffer.price;
    const tokenRefund = 10n ** 19n - tokenPrice;
    assert.deepEqual(
      nativeEnd.map((b, i) => b - nativeStart[i]!),
      [2n * nativeRefund, defaultOffer.price + 2n * defaultTaskDeposit, defaultOffer.price + 2n * defaultTaskDeposit],
    );
    assert.deepEqual(tokensEnd.map((b, i) => b - tokensStart[i]!), [2n * tokenRefund, tokenPrice, tokenPrice, -2n * 10n ** 19n]);
    assert.equal(parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "PaymentDeferred" }).length, 0);
  });

  test("empty batches revert EmptyBatch and parallel arrays of different lengths BatchLengthMismatch", async () => {
    await rejectsWith(submitTasks(f.requester, market, { items: [] }), "EmptyBatch");
    await rejectsWith(acceptTasks(operator, market, { tasks: [], enclave: enclave.address }), "EmptyBatch");
    await rejectsWith(completeTasks(operator, market, { items: [] }), "EmptyBatch");

    const [a, b] = specItems(2);
    const submitMismatch = await rejectsWith(
      writeContractTransaction(f.requester, "submitTasks", { address: market, abi: taskMarketAbi, functionName: "submitTasks", args: [[a!.spec, b!.spec], [a!.salt]], value: a!.spec.maxPrice + b!.spec.maxPrice }),
      "BatchLengthMismatch",
    );
    assert.deepEqual([submitMismatch.args.firstLength, submitMismatch.args.secondLength], [2n, 1n]);
    const { taskIds } = await submitTasks(f.requester, market, { items: [a!, b!] });
    const acceptMismatch = await rejectsWith(
      writeContractTransaction(operator, "acceptTasks", { address: market, abi: taskMarketAbi, functionName: "acceptTasks", args: [taskIds, [a!.spec], enclave.address], value: 2n * defaultTaskDeposit }),
      "BatchLengthMismatch",
    );
    assert.deepEqual([acceptMismatch.args.firstLength, acceptMismatch.args.secondLength], [2n, 1n]);
  });

  test("submitTasks wants exactly the native escrow as value, and names a repeated salt", async () => {
    const items = specItems(3);
    const total = items.reduce((sum, item) => sum + item.spec.maxPrice, 0n);
    const submitWithValue = (value: bigint) =>
      writeContractTransaction(f.requester, "submitTasks", { address: market, abi: taskMarketAbi, functionName: "submitTasks", args: [items.map((i) => i.spec), items.map((i) => i.salt)], value });
    for (const value of [total - 1n, total + 1n, 0n]) {
      const err = await rejectsWith(submitWithValue(value), "WrongEscrow");
      assert.deepEqual([err.args.expected, err.args.sent], [total, value]);
    }
    const repeated = [items[0]!, { ...items[1]!, salt: items[0]!.salt }];
    const err = await rejectsWith(submitTasks(f.requester, market, { items: repeated }), "TaskExists");
    assert.equal(err.args.taskId, computeTaskId(BigInt(f.chain.chainId), market, f.requester.account.address, items[0]!.salt));
    await submitWithValue(total);
  });

  test("acceptTasks wants the deposit times the task count, skips a task another node took, and returns its deposit", async () => {
    const items = specItems(3);
    const { taskIds } = await submitTasks(f.requester, market, { items });
    const tasks = items.map((item, i) => ({ taskId: taskIds[i]!, spec: item.spec }));
    for (const deposit of [defaultTaskDeposit - 1n, defaultTaskDeposit + 1n]) {
      const err = await rejectsWith(acceptTasks(operator, market, { tasks, enclave: enclave.address, deposit }), "WrongDeposit");
      assert.deepEqual([err.args.expected, err.args.sent], [3n * defaultTaskDeposit, 3n * deposit]);
    }

    await acceptTask(operator, market, { taskId: taskIds[1]!, spec: items[1]!.spec, enclave: enclave.address });
    const marketBefore = await balance(market);
    const batch = await acceptTasks(operator, market, { tasks, enclave: enclave.address });
    assert.deepEqual(batch.accepted.map((a) => a.taskId), [taskIds[0], taskIds[2]]);
    assert.deepEqual(batch.skipped, [taskIds[1]]);
    assert.equal(await balance(market), marketBefore + 2n * defaultTaskDeposit, "only the accepted tasks' deposits stay in the market");
    assert.deepEqual((await readTasks(f.reader, market, taskIds)).map((r) => r.attempt), [1, 1, 1], "the taken task keeps its one attempt");

    // Any other failure still reverts the whole batch with the task's own error.
    const [fresh] = specItems(1);
    const { taskId: freshId } = await submitTask(f.requester, market, fresh!);
    const tampered = { ...fresh!.spec, maxPrice: fresh!.spec.maxPrice + 1n };
    const err = await rejectsWith(acceptTasks(operator, market, { tasks: [{ taskId: freshId, spec: tampered }], enclave: enclave.address }), "SpecMismatch");
    assert.equal(err.args.taskId, freshId);
  });

  test("completeTasks names the item whose signature is bad, and completes nothing until it is dropped", async () => {
    const tasks = await acceptedBatch(3);
    const stranger = newEnclave();
    const proofs = await Promise.all(tasks.map((task, i) => completion(task.taskId, task.spec, task.assignment, i === 1 ? stranger : enclave)));
    const marketBefore = await balance(market);
    const err = await rejectsWith(completeTasks(operator, market, { items: proofs }), "InvalidCompletionSignature");
    assert.deepEqual([err.args.taskId, err.args.recovered], [tasks[1]!.taskId, stranger.address]);
    assert.deepEqual((await readTasks(f.reader, market, tasks.map((t) => t.taskId))).map((r) => r.status), ["Accepted", "Accepted", "Accepted"]);
    assert.equal(await balance(market), marketBefore, "nothing paid");

    await completeTasks(operator, market, { items: [proofs[0]!, proofs[2]!] });
    assert.deepEqual((await readTasks(f.reader, market, tasks.map((t) => t.taskId))).map((r) => r.status), ["Completed", "Accepted", "Completed"]);
  });

  test("taskWords returns each task's packed word, 0 for an unknown id, and readTasks decodes it as readTask does", async () => {
    const [open] = specItems(1);
    const { taskId: openId } = await submitTask(f.requester, market, open!);
    const [accepted] = await acceptedBatch(1);
    const unknown = 12345n;
    const ids = [accepted!.taskId, unknown, openId];
    const words = await f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "taskWords", args: [ids] });
    const single = await Promise.all(ids.map((id) => f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "tasks", args: [id] })));
    assert.deepEqual(words, single);
    assert.equal(words[1], 0n);
    assert.equal(words[2], BigInt(taskCommitment(open!.spec)) | 1n, "open: the spec's commitment, attempt 0, no deadline, status 1");

    const records = await readTasks(f.reader, market, ids);
    assert.deepEqual(records, await Promise.all(ids.map((id) => readTask(f.reader, market, id))));
    assert.deepEqual(records.map((r) => r.status), ["Accepted", "None", "Open"]);
    assert.equal(records[0]!.commitment, taskCommitment(accepted!.spec, accepted!.assignment));
    assert.deepEqual(await readTasks(f.reader, market, []), []);
  });
});
