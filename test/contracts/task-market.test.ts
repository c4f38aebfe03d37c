import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseEventLogs, zeroAddress, type Address, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { cancelTask } from "../../src/chain/actions/cancel-task.ts";
import { completeTask, type CompleteTaskParams } from "../../src/chain/actions/complete-task.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { reclaimExpired } from "../../src/chain/actions/reclaim-expired.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { withdrawPayment } from "../../src/chain/actions/withdraw-payment.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { computeTaskId, taskSpecHash, type TaskSpec } from "../../src/protocol/task.ts";
import {
  advanceTime,
  feeOf,
  makeSpec,
  newEnclave,
  randomDigest,
  register,
  signCompletion,
  startFixture,
  type Fixture,
  rejectsWith,
  type TestEnclave,
} from "./fixture.ts";

const reward = 10n ** 17n;

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

  /** A registered enclave run by `operator`, and an open task listing it as a candidate. */
  async function openTask(options: { candidates?: "self" | "none"; ttl?: bigint; enclaveTtl?: bigint } = {}) {
    const enclave = newEnclave();
    await register(f, enclave, operator.account.address, { ttl: options.enclaveTtl ?? 3600n });
    const spec = await makeSpec(f, options.candidates === "none" ? [] : [enclave.address], options.ttl ?? 600n);
    const submitted = await submitTask(f.requester, market, { spec, reward });
    return { enclave, spec, taskId: submitted.taskId, submitted };
  }

  async function acceptedTask(options: { ttl?: bigint; enclaveTtl?: bigint } = {}) {
    const t = await openTask(options);
    const accepted = await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address });
    return { ...t, accepted };
  }

  async function completion(taskId: bigint, spec: TaskSpec, signer: TestEnclave): Promise<CompleteTaskParams> {
    const outputDigest = randomDigest();
    const provenanceDigest = randomDigest();
    const signature = await signCompletion(f, signer.account, {
      taskId,
      programDigest: spec.programDigest,
      inputDigest: spec.inputDigest,
      outputDigest,
      provenanceDigest,
    });
    return { taskId, spec, outputDigest, provenanceDigest, outputCid: "bafkreioutput", provenanceCid: "bafkreiprovenance", signature };
  }

  test("happy path: submit, accept, complete with the enclave's EIP-712 signature, operator paid once", async () => {
    const operatorBefore = await balance(operator.account.address);
    const requesterBefore = await balance(f.requester.account.address);
    const marketBefore = await balance(market);

    const t = await openTask();
    const { submitted } = t;
    assert.equal(t.taskId, computeTaskId(BigInt(f.chain.chainId), market, f.requester.account.address, submitted.salt));
    const [submittedEvent] = parseEventLogs({ abi: taskMarketAbi, logs: submitted.receipt.logs, eventName: "TaskSubmitted" });
    assert.equal(submittedEvent?.args.specHash, taskSpecHash(t.spec));
    assert.deepEqual(submittedEvent?.args.spec, t.spec);
    assert.equal(await balance(market), marketBefore + reward);
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Open");

    const accepted = await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address });
    const record = await readTask(f.reader, market, t.taskId);
    assert.equal(record.status, "Accepted");
    assert.equal(record.enclave, t.enclave.address);
    assert.equal(record.operator, operator.account.address);

    const params = await completion(t.taskId, t.spec, t.enclave);
    // Anyone may relay the proof; the reward still goes to the operator who accepted.
    const relayer = f.operators[1]!;
    const completed = await completeTask(relayer, market, params);
    const [event] = parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "TaskCompleted" });
    assert.deepEqual(
      [event?.args.taskId, event?.args.enclave, event?.args.operator, event?.args.outputDigest, event?.args.provenanceDigest, event?.args.outputCid, event?.args.provenanceCid, event?.args.reward],
      [t.taskId, t.enclave.address, operator.account.address, params.outputDigest, params.provenanceDigest, "bafkreioutput", "bafkreiprovenance", reward],
    );
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Completed");

    assert.equal(await balance(market), marketBefore, "escrow is gone from the market");
    assert.equal(await balance(operator.account.address), operatorBefore + reward - feeOf(accepted.receipt));
    assert.equal(await balance(f.requester.account.address), requesterBefore - reward - feeOf(submitted.receipt));

    console.log(`gasUsed submit=${submitted.gasUsed} accept=${accepted.gasUsed} complete=${completed.gasUsed} total=${submitted.gasUsed + accepted.gasUsed + completed.gasUsed}`);

    await rejectsWith(completeTask(relayer, market, params), "TaskNotAccepted");
    await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, t.enclave)), "TaskNotAccepted");
    assert.equal(await balance(market), marketBefore, "a second completion pays nothing");
  });

  test("submit needs escrow, a future deadline and a fresh salt", async () => {
    const spec = await makeSpec(f, []);
    await rejectsWith(submitTask(f.requester, market, { spec, reward: 0n }), "NoEscrow");
    await rejectsWith(submitTask(f.requester, market, { spec: { ...spec, deadline: 1n }, reward }), "DeadlinePassed");
    const first = await submitTask(f.requester, market, { spec, reward });
    const err = await rejectsWith(submitTask(f.requester, market, { spec, reward, salt: first.salt }), "TaskExists");
    assert.equal(err.args.taskId, first.taskId);
    assert.match(err.message, /TaskExists\(taskId=\d+\).*fresh salt/);
  });

  test("accept checks the spec, the candidate list, the registry and the operator", async () => {
    const t = await openTask();
    await rejectsWith(acceptTask(operator, market, { taskId: t.taskId, spec: { ...t.spec, envelopeCid: "other" }, enclave: t.enclave.address }), "SpecMismatch");
    await rejectsWith(acceptTask(operator, market, { taskId: 123n, spec: t.spec, enclave: t.enclave.address }), "UnknownTask");

    const outsider = newEnclave();
    await register(f, outsider, operator.account.address);
    await rejectsWith(acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: outsider.address }), "EnclaveNotCandidate");
    await rejectsWith(acceptTask(f.operators[1]!, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address }), "NotEnclaveOperator");

    const unregistered = newEnclave();
    const openSpec = await makeSpec(f, [unregistered.address]);
    const open = await submitTask(f.requester, market, { spec: openSpec, reward });
    await rejectsWith(acceptTask(operator, market, { taskId: open.taskId, spec: openSpec, enclave: unregistered.address }), "EnclaveNotActive");

    await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address });
    const again = await rejectsWith(acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address }), "TaskNotOpen");
    assert.equal(again.args.status, 2);
  });

  test("an empty candidate list admits any active enclave", async () => {
    const t = await openTask({ candidates: "none" });
    const other = newEnclave();
    await register(f, other, operator.account.address);
    await acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: other.address });
    assert.equal((await readTask(f.reader, market, t.taskId)).enclave, other.address);
  });

  test("expired and revoked enclaves cannot accept", async () => {
    const expiring = await openTask({ enclaveTtl: 20n });
    await advanceTime(f, 21n);
    await rejectsWith(acceptTask(operator, market, { taskId: expiring.taskId, spec: expiring.spec, enclave: expiring.enclave.address }), "EnclaveNotActive");

    const revoked = await openTask();
    await revokeEnclave(f.attester, f.deployment.registry, revoked.enclave.address);
    await rejectsWith(acceptTask(operator, market, { taskId: revoked.taskId, spec: revoked.spec, enclave: revoked.enclave.address }), "EnclaveNotActive");
  });

  test("accept after the deadline fails", async () => {
    const t = await openTask({ ttl: 10n });
    await advanceTime(f, 11n);
    await rejectsWith(acceptTask(operator, market, { taskId: t.taskId, spec: t.spec, enclave: t.enclave.address }), "DeadlinePassed");
  });

  test("complete rejects a signature by any key other than the accepted enclave's", async () => {
    const t = await acceptedTask();
    const stranger = newEnclave(); // never registered
    const err = await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, stranger)), "InvalidCompletionSignature");
    assert.equal(err.args.recovered, stranger.address);

    // A registered, active enclave that did not accept the task is refused as well.
    const other = newEnclave();
    await register(f, other, operator.account.address);
    await rejectsWith(completeTask(operator, market, await completion(t.taskId, t.spec, other)), "InvalidCompletionSignature");

    // The right key over other digests: the signature does not cover what is submitted.
    const params = await completion(t.taskId, t.spec, t.enclave);
    await rejectsWith(completeTask(operator, market, { ...params, outputDigest: randomDigest() }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(operator, market, { ...params, signature: `0x${"00".repeat(65)}` as Hex }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(operator, market, { ...params, spec: { ...t.spec, deadline: t.spec.deadline + 1n } }), "SpecMismatch");

    await completeTask(operator, market, params);
  });

  test("complete fails once the enclave is revoked, or past the deadline", async () => {
    const revoked = await acceptedTask();
    await revokeEnclave(f.attester, f.deployment.registry, revoked.enclave.address);
    await rejectsWith(completeTask(operator, market, await completion(revoked.taskId, revoked.spec, revoked.enclave)), "EnclaveNotActive");

    const late = await acceptedTask({ ttl: 10n });
    await advanceTime(f, 11n);
    await rejectsWith(completeTask(operator, market, await completion(late.taskId, late.spec, late.enclave)), "DeadlinePassed");

    const open = await openTask();
    await rejectsWith(completeTask(operator, market, await completion(open.taskId, open.spec, open.enclave)), "TaskNotAccepted");
  });

  test("the requester cancels an open task once and gets the escrow back", async () => {
    const t = await openTask();
    await rejectsWith(cancelTask(operator, market, t.taskId), "NotRequester");
    const before = await balance(f.requester.account.address);
    const marketBefore = await balance(market);
    const cancelled = await cancelTask(f.requester, market, t.taskId);
    assert.equal(await balance(f.requester.account.address), before + reward - feeOf(cancelled.receipt));
    assert.equal(await balance(market), marketBefore - reward);
    assert.equal((await readTask(f.reader, market, t.taskId)).status, "Cancelled");
    await rejectsWith(cancelTask(f.requester, market, t.taskId), "TaskNotOpen");
    await rejectsWith(reclaimExpired(f.requester, market, t.taskId), "TaskAlreadySettled");

    const accepted = await acceptedTask();
    await rejectsWith(cancelTask(f.requester, market, accepted.taskId), "TaskNotOpen");
  });

  test("past the deadline anyone refunds an open or accepted task to the requester, once", async () => {
    const open = await openTask({ ttl: 30n });
    const accepted = await acceptedTask({ ttl: 30n });
    await rejectsWith(reclaimExpired(operator, market, open.taskId), "DeadlineNotReached");
    await advanceTime(f, 31n);

    const before = await balance(f.requester.account.address);
    const marketBefore = await balance(market);
    const refunds = [await reclaimExpired(operator, market, open.taskId), await reclaimExpired(operator, market, accepted.taskId)];
    assert.equal(await balance(f.requester.account.address), before + 2n * reward, "the requester paid no gas and got both escrows");
    assert.equal(await balance(market), marketBefore - 2n * reward);
    const events = refunds.flatMap((r) => parseEventLogs({ abi: taskMarketAbi, logs: r.receipt.logs, eventName: "TaskRefunded" }));
    assert.deepEqual(events.map((e) => e.args.previousStatus), [1, 2]);

    await rejectsWith(reclaimExpired(operator, market, open.taskId), "TaskAlreadySettled");
    await rejectsWith(reclaimExpired(f.requester, market, accepted.taskId), "TaskAlreadySettled");
    await rejectsWith(completeTask(operator, market, await completion(accepted.taskId, accepted.spec, accepted.enclave)), "TaskNotAccepted");
    assert.equal(await balance(market), marketBefore - 2n * reward, "nothing paid twice");
  });

  test("a completed task cannot be reclaimed", async () => {
    const t = await acceptedTask({ ttl: 30n });
    await completeTask(operator, market, await completion(t.taskId, t.spec, t.enclave));
    await advanceTime(f, 31n);
    await rejectsWith(reclaimExpired(f.requester, market, t.taskId), "TaskAlreadySettled");
  });

  test("a recipient that rejects ether is credited instead, and withdraws once", async () => {
    const t = await openTask({ ttl: 30n });
    const requester = f.requester.account.address;
    // Make the requester's address revert on receipt (PUSH0 PUSH0 REVERT), as a contract wallet might.
    await f.chain.provider.request({ method: "hardhat_setCode", params: [requester, "0x5f5ffd"] });
    await advanceTime(f, 31n);
    const reclaimed = await reclaimExpired(operator, market, t.taskId);
    const [deferred] = parseEventLogs({ abi: taskMarketAbi, logs: reclaimed.receipt.logs, eventName: "PaymentDeferred" });
    assert.equal(deferred?.args.account, requester);
    assert.equal(deferred?.args.amount, reward);
    await f.chain.provider.request({ method: "hardhat_setCode", params: [requester, "0x"] });

    assert.equal(await f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "owed", args: [requester] }), reward);
    const before = await balance(requester);
    const withdrawn = await withdrawPayment(f.requester, market);
    assert.equal(await balance(requester), before + reward - feeOf(withdrawn.receipt));
    await rejectsWith(withdrawPayment(f.requester, market), "NothingToWithdraw");
    assert.equal(await f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "owed", args: [requester] }), 0n);
  });

  test("the on-chain completion digest is the EIP-712 digest of src/protocol/completion.ts", async () => {
    const t = await acceptedTask();
    const params = await completion(t.taskId, t.spec, t.enclave);
    const digest = await f.reader.readContract({
      address: market,
      abi: taskMarketAbi,
      functionName: "completionDigest",
      args: [t.taskId, t.spec.programDigest, t.spec.inputDigest, params.outputDigest, params.provenanceDigest],
    });
    const { hashTypedData } = await import("viem");
    const { completionDomain, completionTypes } = await import("../../src/protocol/completion.ts");
    assert.equal(
      digest,
      hashTypedData({
        domain: completionDomain(BigInt(f.chain.chainId), market),
        types: completionTypes,
        primaryType: "Completion",
        message: { taskId: t.taskId, programDigest: t.spec.programDigest, inputDigest: t.spec.inputDigest, outputDigest: params.outputDigest, provenanceDigest: params.provenanceDigest },
      }),
    );
    assert.notEqual(t.enclave.address, zeroAddress);
  });
});
