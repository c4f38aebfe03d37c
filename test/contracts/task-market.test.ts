import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { hashTypedData, parseEventLogs, zeroAddress, type Address, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { testTokenAbi } from "../../src/chain/abi/TestToken.ts";
import { acceptTask, type AcceptedTask } from "../../src/chain/actions/accept-task.ts";
import { cancelTask } from "../../src/chain/actions/cancel-task.ts";
import { completeTask } from "../../src/chain/actions/complete-task.ts";
import { readMarketConfig, setCategory, setTaskDeposit } from "../../src/chain/actions/market-config.ts";
import { postOffer, readOffer, withdrawOffer } from "../../src/chain/actions/offers.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { reopenTask } from "../../src/chain/actions/reopen-task.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { approveToken, readTokenBalance } from "../../src/chain/actions/token.ts";
import { withdrawPayment } from "../../src/chain/actions/withdraw-payment.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { defaultTaskDeposit, deployTestToken } from "../../src/chain/deploy.ts";
import { completionDomain, completionTypes } from "../../src/protocol/completion.ts";
import { computeTaskId, taskCommitment, taskSpecHash, type Assignment, type TaskSpec } from "../../src/protocol/task.ts";
import {
  advanceTime,
  defaultOffer,
  feeOf,
  latestTimestamp,
  makeSpec,
  newEnclave,
  randomDigest,
  register,
  registerWithOffer,
  rejectsWith,
  signedCompletion,
  startFixture,
  type Fixture,
  type TestEnclave,
} from "./fixture.ts";

const gasBudget = 200_000n;

describe("TaskMarket", () => {
  let f: Fixture;
  let operator: WriterClient;
  let market: Address;

  before(async () => {
    f = await startFixture();
    operator = f.operators[0]!;
    market = f.deployment.market;
  });
  after(() => f.close());

  const balance = (address: Address) => f.reader.getBalance({ address });

  /** An enclave of `operator` with the default native offer, and an open task for it. */
  async function openTask(options: { direct?: boolean; spec?: Partial<TaskSpec>; offer?: Parameters<typeof registerWithOffer>[3] } = {}) {
    const enclave = newEnclave();
    await registerWithOffer(f, enclave, operator, options.offer);
    const spec = makeSpec(f, options.direct === false ? [] : [enclave.address], options.spec);
    const submitted = await submitTask(f.requester, market, { spec });
    return { enclave, spec, taskId: submitted.taskId, submitted };
  }

  async function acceptedTask(options: Parameters<typeof openTask>[0] = {}) {
    const t = await openTask(options);
    const accepted = await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address });
    return { ...t, accepted, assignment: accepted.assignment };
  }

  const completion = (taskId: bigint, spec: TaskSpec, assignment: Assignment, signer: TestEnclave) => signedCompletion(f, taskId, spec, assignment, signer);

  /** One lifecycle (submit, accept, complete) from the operator's side; returns the three gasUsed figures. */
  async function lifecycle(direct: boolean) {
    const enclave = newEnclave();
    await registerWithOffer(f, enclave, operator);
    // Direct: the requester names the enclave and escrows its price; open: any enclave, a higher maximum.
    const spec = makeSpec(f, direct ? [enclave.address] : [], { maxPrice: direct ? defaultOffer.price : 2n * defaultOffer.price });
    const operatorBefore = await balance(operator.account.address);
    const requesterBefore = await balance(f.requester.account.address);
    const marketBefore = await balance(market);
    const submitted = await submitTask(f.requester, market, { spec });
    const accepted = await acceptTask(operator, market, { taskId: submitted.taskId, spec, enclave: enclave.address });
    const completed = await completeTask(operator, market, await completion(submitted.taskId, spec, accepted.assignment, enclave));
    assert.equal(await balance(market), marketBefore, "escrow and deposit left the market");
    assert.equal(await balance(operator.account.address), operatorBefore + defaultOffer.price - feeOf(accepted.receipt) - feeOf(completed.receipt));
    assert.equal(await balance(f.requester.account.address), requesterBefore - defaultOffer.price - feeOf(submitted.receipt));
    return { submit: submitted.gasUsed, accept: accepted.gasUsed, complete: completed.gasUsed, total: submitted.gasUsed + accepted.gasUsed + completed.gasUsed };
  }

  test("happy path: submit, accept, complete; the operator gets its price and deposit back, the requester the rest", async () => {
    const requesterBefore = await balance(f.requester.account.address);
    const marketBefore = await balance(market);
    const t = await openTask({ direct: false });
    assert.equal(t.taskId, computeTaskId(BigInt(f.chain.chainId), market, f.requester.account.address, t.submitted.salt));
    const [submittedEvent] = parseEventLogs({ abi: taskMarketAbi, logs: t.submitted.receipt.logs, eventName: "TaskSubmitted" });
    assert.equal(submittedEvent?.args.specHash, taskSpecHash(t.spec));
    assert.deepEqual(submittedEvent?.args.spec, t.spec);
    assert.equal(await balance(market), marketBefore + t.spec.maxPrice);
    assert.deepEqual(await readTask(f.reader, market, t.taskId), { taskId: t.taskId, status: "Open", attempt: 0, deadline: 0n, commitment: taskCommitment(t.spec) });

    const operatorBefore = await balance(operator.account.address);
    const accepted = await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address });
    const acceptedAt = await latestTimestamp(f);
    assert.deepEqual(accepted.assignment, { enclave: t.enclave.address, operator: operator.account.address, price: defaultOffer.price, deposit: defaultTaskDeposit });
    assert.equal(accepted.deadline, acceptedAt + 300n * 2n, "XS (300 s) x deadlineMultiple 2");
    assert.deepEqual(await readTask(f.reader, market, t.taskId), { taskId: t.taskId, status: "Accepted", attempt: 1, deadline: accepted.deadline, commitment: taskCommitment(t.spec, accepted.assignment) });
    assert.equal(await balance(market), marketBefore + t.spec.maxPrice + defaultTaskDeposit);

    // Anyone may relay the proof; the operator who accepted is paid.
    const params = await completion(t.taskId, t.spec, accepted.assignment, t.enclave);
    const completed = await completeTask(f.operators[1]!, market, params);
    const [event] = parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "TaskCompleted" });
    assert.deepEqual(
      [event?.args.taskId, event?.args.enclave, event?.args.operator, event?.args.outputDigest, event?.args.provenanceDigest, event?.args.outputCid, event?.args.provenanceCid, event?.args.price],
      [t.taskId, t.enclave.address, operator.account.address, params.outputDigest, params.provenanceDigest, "bafkreioutput", "bafkreiprovenance", defaultOffer.price],
    );
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Completed");
    assert.equal(await balance(market), marketBefore, "escrow and deposit left the market");
    assert.equal(await balance(operator.account.address), operatorBefore + defaultOffer.price - feeOf(accepted.receipt));
    assert.equal(await balance(f.requester.account.address), requesterBefore - defaultOffer.price - feeOf(t.submitted.receipt));

    await rejectsWith(completeTask(operator, market, params), "TaskNotAccepted");
    await rejectsWith(reopenTask(operator, market, { taskId: t.taskId, spec: t.spec, assignment: accepted.assignment }), "TaskNotAccepted");
    assert.equal(await balance(market), marketBefore, "a second completion pays nothing");
  });

  test("gas: a lifecycle is within budget with open matching, and cheaper with direct assignment", async () => {
    await lifecycle(true); // warm-up: the first use of an account or slot costs more
    const open = await lifecycle(false);
    const direct = await lifecycle(true);
    console.log(`gasUsed open: submit=${open.submit} accept=${open.accept} complete=${open.complete} total=${open.total}`);
    console.log(`gasUsed direct: submit=${direct.submit} accept=${direct.accept} complete=${direct.complete} total=${direct.total}`);
    assert.ok(open.total <= gasBudget, `open lifecycle ${open.total} > ${gasBudget}`);
    assert.ok(direct.total < open.total, `direct ${direct.total} >= open ${open.total}`);
  });

  test("submit checks the escrow, the spec's shape and the salt", async () => {
    const spec = makeSpec(f, []);
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, maxPrice: 0n } }), "NoEscrow");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, requester: operator.account.address } }), "InvalidSpec");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, maxAttempts: 0 } }), "InvalidSpec");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, deadlineMultiple: 0 } }), "InvalidSpec");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, teeTypes: 0 } }), "InvalidSpec");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, teeTypes: 8 } }), "InvalidSpec");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, category: 8 } }), "UnknownCategory");
    const wrong = await f.requester.simulateContract({ address: market, abi: taskMarketAbi, functionName: "submitTask", args: [spec, randomDigest()], value: 1n }).catch((e: unknown) => e);
    assert.match(String(wrong), /WrongEscrow/);
    const first = await submitTask(f.requester, market, { spec });
    const err = await rejectsWith(submitTask(f.requester, market, { spec, salt: first.salt }), "TaskExists");
    assert.equal(err.args.taskId, first.taskId);
    assert.match(err.message, /TaskExists\(taskId=\d+\).*fresh salt/);
  });

  test("offers: only the active enclave's operator posts or withdraws them", async () => {
    const enclave = newEnclave();
    const terms = { enclave: enclave.address, token: zeroAddress, ...defaultOffer };
    await rejectsWith(postOffer(operator, market, terms), "EnclaveNotActive");
    await register(f, enclave, operator.account.address);
    await rejectsWith(postOffer(f.operators[1]!, market, terms), "NotEnclaveOperator");
    await rejectsWith(postOffer(operator, market, { ...terms, maxDuration: 0 }), "InvalidOffer");
    const posted = await postOffer(operator, market, terms);
    assert.equal(parseEventLogs({ abi: taskMarketAbi, logs: posted.receipt.logs, eventName: "OfferPosted" }).length, 1);
    assert.deepEqual(await readOffer(f.reader, market, enclave.address, zeroAddress), defaultOffer);
    console.log(`gasUsed postOffer=${posted.gasUsed}`);

    await rejectsWith(withdrawOffer(f.operators[1]!, market, enclave.address, zeroAddress), "NotEnclaveOperator");
    await rejectsWith(withdrawOffer(operator, market, enclave.address, operator.account.address), "NoOffer");
    // An open task for it cannot be accepted once the offer is withdrawn.
    const spec = makeSpec(f, [enclave.address]);
    const { taskId } = await submitTask(f.requester, market, { spec });
    await withdrawOffer(operator, market, enclave.address, zeroAddress);
    assert.equal(await readOffer(f.reader, market, enclave.address, zeroAddress), undefined);
    await rejectsWith(acceptTask(operator, market, { taskId, spec, enclave: enclave.address }), "NoOffer");
  });

  test("accept checks the spec, candidates, operator, offer, resources, price, TEE type, category and deposit", async () => {
    const t = await openTask();
    const accept = (spec: TaskSpec, enclave: Address, by = operator, deposit?: bigint) => acceptTask(by, market, { taskId: t.taskId, spec, enclave, ...(deposit === undefined ? {} : { deposit }) });
    await rejectsWith(accept({ ...t.spec, envelopeCid: "other" }, t.enclave.address), "SpecMismatch");
    await rejectsWith(acceptTask(operator, market, { taskId: 123n, spec: t.spec, enclave: t.enclave.address }), "UnknownTask");
    const outsider = newEnclave();
    await registerWithOffer(f, outsider, operator);
    await rejectsWith(accept(t.spec, outsider.address), "EnclaveNotCandidate");
    await rejectsWith(accept(t.spec, t.enclave.address, f.operators[1]!), "NotEnclaveOperator");
    await rejectsWith(accept(t.spec, t.enclave.address, operator, 0n), "WrongDeposit");
    await rejectsWith(accept(t.spec, t.enclave.address, operator, defaultTaskDeposit + 1n), "WrongDeposit");

    const mismatches: [Partial<TaskSpec>, string][] = [
      [{ maxPrice: defaultOffer.price - 1n }, "PriceAboveMax"],
      [{ cpuMillis: defaultOffer.cpuMillis + 1 }, "InsufficientResources"],
      [{ memoryMb: defaultOffer.memoryMb + 1 }, "InsufficientResources"],
      [{ duration: defaultOffer.maxDuration + 1 }, "InsufficientResources"],
      [{ teeTypes: 2 | 4 }, "TeeTypeNotAccepted"],
      [{ category: 6 }, "UnknownCategory"],
    ];
    for (const [override, errorName] of mismatches) {
      const spec = makeSpec(f, [t.enclave.address], override);
      const { taskId } = await submitTask(f.requester, market, { spec });
      await rejectsWith(acceptTask(operator, market, { taskId, spec, enclave: t.enclave.address }), errorName);
    }
    // Exactly at the limits is fine.
    const exact = makeSpec(f, [t.enclave.address], { maxPrice: defaultOffer.price, cpuMillis: defaultOffer.cpuMillis, memoryMb: defaultOffer.memoryMb, duration: defaultOffer.maxDuration, teeTypes: 1 });
    const exactTask = await submitTask(f.requester, market, { spec: exact });
    await acceptTask(operator, market, { taskId: exactTask.taskId, spec: exact, enclave: t.enclave.address });

    const unregistered = newEnclave();
    const spec = makeSpec(f, [unregistered.address]);
    const open = await submitTask(f.requester, market, { spec });
    await rejectsWith(acceptTask(operator, market, { taskId: open.taskId, spec, enclave: unregistered.address }), "NoOffer");

    await accept(t.spec, t.enclave.address);
    const again = await rejectsWith(accept(t.spec, t.enclave.address), "TaskNotOpen");
    assert.equal(again.args.status, 2);
  });

  test("an empty candidate list admits any enclave with a matching offer", async () => {
    const t = await openTask({ direct: false });
    const other = newEnclave();
    await registerWithOffer(f, other, f.operators[1]!);
    const accepted = await acceptTask(f.operators[1]!, market, { taskId: t.taskId, spec: t.spec, enclave: other.address });
    assert.equal(accepted.assignment.enclave, other.address);
    assert.equal(accepted.assignment.operator, f.operators[1]!.account.address);
  });

  test("expired and revoked enclaves cannot accept", async () => {
    const enclave = newEnclave();
    await register(f, enclave, operator.account.address, { ttl: 20n });
    await postOffer(operator, market, { enclave: enclave.address, token: zeroAddress, ...defaultOffer });
    const spec = makeSpec(f, [enclave.address]);
    const expiring = await submitTask(f.requester, market, { spec });
    await advanceTime(f, 21n);
    await rejectsWith(acceptTask(operator, market, { taskId: expiring.taskId, spec, enclave: enclave.address }), "EnclaveNotActive");

    const revoked = await openTask();
    await revokeEnclave(f.attester, f.deployment.registry, revoked.enclave.address);
    await rejectsWith(acceptTask(operator, market, { taskId: revoked.taskId, spec: revoked.spec, enclave: revoked.enclave.address }), "EnclaveNotActive");
    // Its operator may still withdraw the offer of a revoked enclave.
    await withdrawOffer(operator, market, revoked.enclave.address, zeroAddress);
  });

  test("complete rejects other keys, other digests, another assignment, and a late or revoked enclave", async () => {
    const t = await acceptedTask();
    const stranger = newEnclave();
    const err = await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, t.assignment, stranger)), "InvalidCompletionSignature");
    assert.equal(err.args.recovered, stranger.address);
    const params = await completion(t.taskId, t.spec, t.assignment, t.enclave);
    await rejectsWith(completeTask(operator, market, { ...params, outputDigest: randomDigest() }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(operator, market, { ...params, signature: `0x${"00".repeat(65)}` as Hex }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(operator, market, { ...params, spec: { ...t.spec, maxPrice: t.spec.maxPrice + 1n } }), "SpecMismatch");
    await rejectsWith(completeTask(operator, market, { ...params, assignment: { ...t.assignment, price: t.assignment.price + 1n } }), "SpecMismatch");
    // A signature by another enclave, claimed as the assignment's enclave, does not match the commitment.
    const other = newEnclave();
    await register(f, other, operator.account.address);
    await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, { ...t.assignment, enclave: other.address }, other)), "SpecMismatch");
    await completeTask(operator, market, params);

    const revoked = await acceptedTask();
    await revokeEnclave(f.attester, f.deployment.registry, revoked.enclave.address);
    await rejectsWith(completeTask(operator, market, await completion(revoked.taskId, revoked.spec, revoked.assignment, revoked.enclave)), "EnclaveNotActive");

    const late = await acceptedTask();
    await advanceTime(f, 601n);
    await rejectsWith(completeTask(operator, market, await completion(late.taskId, late.spec, late.assignment, late.enclave)), "DeadlinePassed");

    const open = await openTask();
    const fake: Assignment = { enclave: open.enclave.address, operator: operator.account.address, price: 1n, deposit: 0n };
    await rejectsWith(completeTask(operator, market, await completion(open.taskId, open.spec, fake, open.enclave)), "TaskNotAccepted");
  });

  test("a missed attempt forfeits the deposit to the requester and reopens the task; another node completes it", async () => {
    const t = await acceptedTask({ direct: false, spec: { maxAttempts: 2 } });
    const first: AcceptedTask = t.accepted;
    await rejectsWith(reopenTask(f.operators[2]!, market, { taskId: t.taskId, spec: t.spec, assignment: first.assignment }), "DeadlineNotReached");
    await advanceTime(f, 601n);
    await rejectsWith(reopenTask(f.operators[2]!, market, { taskId: t.taskId, spec: t.spec, assignment: { ...first.assignment, deposit: 0n } }), "SpecMismatch");

    const requesterBefore = await balance(f.requester.account.address);
    const reopened = await reopenTask(f.operators[2]!, market, { taskId: t.taskId, spec: t.spec, assignment: first.assignment });
    assert.equal(reopened.outcome, "reopened");
    assert.equal(await balance(f.requester.account.address), requesterBefore + defaultTaskDeposit, "the deposit went to the requester");
    const [event] = parseEventLogs({ abi: taskMarketAbi, logs: reopened.receipt.logs, eventName: "TaskReopened" });
    assert.deepEqual([event?.args.attempt, event?.args.enclave, event?.args.forfeitedDeposit, event?.args.spec], [1, t.enclave.address, defaultTaskDeposit, t.spec]);
    assert.deepEqual(await readTask(f.reader, market, t.taskId), { taskId: t.taskId, status: "Open", attempt: 1, deadline: 0n, commitment: taskCommitment(t.spec) });
    console.log(`gasUsed reopen=${reopened.gasUsed}`);

    const second = newEnclave();
    const node2 = f.operators[1]!;
    await registerWithOffer(f, second, node2);
    const accepted = await acceptTask(node2, market, { taskId: t.taskId, spec: t.spec, enclave: second.address });
    assert.equal(accepted.attempt, 2);
    // The first node's late proof no longer matches the task.
    await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, first.assignment, t.enclave)), "SpecMismatch");
    await completeTask(node2, market, await completion(t.taskId, t.spec, accepted.assignment, second));
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Completed");
  });

  test("after the last attempt the task is refunded with the forfeited deposit, once", async () => {
    const marketBefore = await balance(market);
    const t = await acceptedTask();
    await advanceTime(f, 601n);
    const requesterBefore = await balance(f.requester.account.address);
    const refunded = await reopenTask(operator, market, { taskId: t.taskId, spec: t.spec, assignment: t.assignment });
    assert.equal(refunded.outcome, "refunded");
    const [event] = parseEventLogs({ abi: taskMarketAbi, logs: refunded.receipt.logs, eventName: "TaskRefunded" });
    assert.deepEqual([event?.args.refund, event?.args.forfeitedDeposit], [t.spec.maxPrice, defaultTaskDeposit]);
    assert.equal(await balance(f.requester.account.address), requesterBefore + t.spec.maxPrice + defaultTaskDeposit, "the requester paid no gas");
    assert.equal(await balance(market), marketBefore);
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Refunded");
    await rejectsWith(reopenTask(operator, market, { taskId: t.taskId, spec: t.spec, assignment: t.assignment }), "TaskNotAccepted");
    await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, t.assignment, t.enclave)), "TaskNotAccepted");
    assert.equal(await balance(market), marketBefore, "nothing paid twice");
  });

  test("the requester cancels an open task once and gets the escrow back", async () => {
    const t = await openTask();
    await rejectsWith(cancelTask(operator, market, t.taskId, t.spec), "NotRequester");
    await rejectsWith(cancelTask(f.requester, market, t.taskId, { ...t.spec, maxPrice: t.spec.maxPrice * 2n }), "SpecMismatch");
    const before = await balance(f.requester.account.address);
    const marketBefore = await balance(market);
    const cancelled = await cancelTask(f.requester, market, t.taskId, t.spec);
    assert.equal(await balance(f.requester.account.address), before + t.spec.maxPrice - feeOf(cancelled.receipt));
    assert.equal(await balance(market), marketBefore - t.spec.maxPrice);
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Cancelled");
    await rejectsWith(cancelTask(f.requester, market, t.taskId, t.spec), "TaskNotOpen");
    await rejectsWith(acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address }), "TaskNotOpen");

    const accepted = await acceptedTask();
    await rejectsWith(cancelTask(f.requester, market, accepted.taskId, accepted.spec), "TaskNotOpen");
  });

  test("the admin sets categories and the deposit; accepted tasks keep their deposit", async () => {
    await rejectsWith(setCategory(operator, market, 5, 60), "OwnableUnauthorizedAccount");
    await rejectsWith(setTaskDeposit(operator, market, 1n), "OwnableUnauthorizedAccount");
    await rejectsWith(setCategory(f.deployer, market, 8, 60), "UnknownCategory");
    assert.deepEqual((await readMarketConfig(f.reader, market)).categoryTimeRefs, [300, 1200, 3600, 10800, 36000, 0, 0, 0]);

    const t = await acceptedTask();
    await setCategory(f.deployer, market, 5, 60);
    await setTaskDeposit(f.deployer, market, 3n * defaultTaskDeposit);
    try {
      assert.deepEqual(await readMarketConfig(f.reader, market), { taskDeposit: 3n * defaultTaskDeposit, categoryTimeRefs: [300, 1200, 3600, 10800, 36000, 60, 0, 0] });
      const operatorBefore = await balance(operator.account.address);
      const completed = await completeTask(operator, market, await completion(t.taskId, t.spec, t.assignment, t.enclave));
      assert.equal(await balance(operator.account.address), operatorBefore + defaultOffer.price + defaultTaskDeposit - feeOf(completed.receipt), "the deposit it posted, not the new one");

      const quick = await acceptedTask({ spec: { category: 5, deadlineMultiple: 3 } });
      assert.equal(quick.assignment.deposit, 3n * defaultTaskDeposit);
      assert.equal(quick.accepted.deadline, (await latestTimestamp(f)) + 180n);
    } finally {
      await setCategory(f.deployer, market, 5, 0);
      await setTaskDeposit(f.deployer, market, defaultTaskDeposit);
    }
  });

  test("an ERC-20 task escrows tokens and pays the operator in tokens, the deposit in native currency", async () => {
    const token = await deployTestToken(f.deployer);
    const requester = f.requester.account.address;
    const mint = await f.requester.writeContract({ address: token, abi: testTokenAbi, functionName: "mint", args: [requester, 10n ** 21n] });
    await f.requester.waitForTransactionReceipt({ hash: mint });
    const price = 7n * 10n ** 18n;
    const enclave = newEnclave();
    await registerWithOffer(f, enclave, operator, { token, price });
    const spec = makeSpec(f, [], { token, maxPrice: 10n ** 19n });

    await assert.rejects(submitTask(f.requester, market, { spec }), "no allowance: the transferFrom fails");
    await approveToken(f.requester, token, market, spec.maxPrice);
    const submitted = await submitTask(f.requester, market, { spec });
    assert.equal(await readTokenBalance(f.reader, token, market), spec.maxPrice);
    const accepted = await acceptTask(operator, market, { taskId: submitted.taskId, spec, enclave: enclave.address });
    const nativeBefore = await balance(operator.account.address);
    const completed = await completeTask(operator, market, await completion(submitted.taskId, spec, accepted.assignment, enclave));
    assert.equal(await readTokenBalance(f.reader, token, operator.account.address), price);
    assert.equal(await readTokenBalance(f.reader, token, requester), 10n ** 21n - price);
    assert.equal(await readTokenBalance(f.reader, token, market), 0n);
    assert.equal(await balance(operator.account.address), nativeBefore + defaultTaskDeposit - feeOf(completed.receipt));
    console.log(`gasUsed erc20: submit=${submitted.gasUsed} accept=${accepted.gasUsed} complete=${completed.gasUsed} total=${submitted.gasUsed + accepted.gasUsed + completed.gasUsed}`);

    // Cancelling refunds tokens too.
    await approveToken(f.requester, token, market, spec.maxPrice);
    const other = await submitTask(f.requester, market, { spec });
    await cancelTask(f.requester, market, other.taskId, spec);
    assert.equal(await readTokenBalance(f.reader, token, requester), 10n ** 21n - price);
  });

  test("a recipient that rejects ether is credited instead, and withdraws once", async () => {
    const t = await openTask();
    const requester = f.requester.account.address;
    // Make the requester's address revert on receipt (PUSH0 PUSH0 REVERT), as a contract wallet might.
    await f.chain.provider.request({ method: "hardhat_setCode", params: [requester, "0x5f5ffd"] });
    const cancelled = await cancelTask(f.requester, market, t.taskId, t.spec);
    const [deferred] = parseEventLogs({ abi: taskMarketAbi, logs: cancelled.receipt.logs, eventName: "PaymentDeferred" });
    assert.deepEqual([deferred?.args.token, deferred?.args.account, deferred?.args.amount], [zeroAddress, requester, t.spec.maxPrice]);
    await f.chain.provider.request({ method: "hardhat_setCode", params: [requester, "0x"] });

    const owed = () => f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "owed", args: [zeroAddress, requester] });
    assert.equal(await owed(), t.spec.maxPrice);
    const before = await balance(requester);
    const withdrawn = await withdrawPayment(f.requester, market);
    assert.equal(await balance(requester), before + t.spec.maxPrice - feeOf(withdrawn.receipt));
    await rejectsWith(withdrawPayment(f.requester, market), "NothingToWithdraw");
    assert.equal(await owed(), 0n);
  });

  test("the on-chain completion digest is the EIP-712 digest of src/protocol/completion.ts", async () => {
    const taskId = 42n;
    const [programDigest, inputDigest, outputDigest, provenanceDigest] = [randomDigest(), randomDigest(), randomDigest(), randomDigest()];
    const [outputCid, provenanceCid] = ["bafkreioutputcid", "bafkreiprovenancecid"];
    const digest = await f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "completionDigest", args: [taskId, programDigest, inputDigest, { outputDigest, provenanceDigest, outputCid, provenanceCid }] });
    assert.equal(
      digest,
      hashTypedData({ domain: completionDomain(BigInt(f.chain.chainId), market), types: completionTypes, primaryType: "Completion", message: { taskId, programDigest, inputDigest, outputDigest, provenanceDigest, outputCid, provenanceCid } }),
    );
  });
});
