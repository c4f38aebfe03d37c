/**
 * Who can make whom lose what in the market (issue 10): a requester whose task cannot run must not take the
 * node's deposit (refuseTask), a relay must not swap the CIDs of a completion, and a payee must not block a
 * transition by rejecting its payment or burning the gas it gets.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { getAddress, parseEventLogs, zeroAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { testTokenAbi } from "../../src/chain/abi/TestToken.ts";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { completeTask } from "../../src/chain/actions/complete-task.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { refuseTask } from "../../src/chain/actions/refuse-task.ts";
import { reopenTask } from "../../src/chain/actions/reopen-task.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { approveToken, readTokenBalance } from "../../src/chain/actions/token.ts";
import { withdrawPayment } from "../../src/chain/actions/withdraw-payment.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { defaultTaskDeposit, deployTestToken } from "../../src/chain/deploy.ts";
import { refusalDigest, refusalReasons } from "../../src/protocol/refusal.ts";
import { taskSpecHash, type TaskSpec } from "../../src/protocol/task.ts";
import {
  advanceTime,
  defaultOffer,
  feeOf,
  makeSpec,
  newEnclave,
  register,
  registerWithOffer,
  rejectsWith,
  signedCompletion,
  signRefusal,
  startFixture,
  type Fixture,
  type TestEnclave,
} from "./fixture.ts";

/** Runtime code that loops until it has burnt all the gas it was given (JUMPDEST PUSH0 JUMP). */
const BURNS_ALL_GAS = "0x5b5f56";
/** Runtime code that reverts whatever it is sent (PUSH0 PUSH0 REVERT). */
const REVERTS = "0x5f5ffd";
/** A transition that pays a hostile payee stays this cheap: the payee gets bounded gas, not the transaction's. */
const boundedGas = 150_000n;

describe("TaskMarket money", () => {
  let f: Fixture;
  let operator: WriterClient;
  let relay: WriterClient;
  let market: Address;

  before(async () => {
    f = await startFixture();
    operator = f.operators[0]!;
    relay = f.operators[2]!;
    market = f.deployment.market;
  });
  after(() => f.close());

  const balance = (address: Address) => f.reader.getBalance({ address });
  const setCode = (address: Address, code: Hex) => f.chain.provider.request({ method: "hardhat_setCode", params: [address, code] });
  const owed = (token: Address, account: Address) => f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "owed", args: [token, account] });

  async function acceptedTask(spec: Partial<TaskSpec> = {}, enclave: TestEnclave = newEnclave()) {
    await registerWithOffer(f, enclave, operator);
    const s = makeSpec(f, [enclave.address], spec);
    const submitted = await submitTask(f.requester, market, { spec: s });
    const accepted = await acceptTask(operator, market, { taskId: submitted.taskId, spec: s, enclave: enclave.address });
    return { enclave, spec: s, taskId: submitted.taskId, assignment: accepted.assignment, attempt: accepted.attempt };
  }

  async function refusal(t: Awaited<ReturnType<typeof acceptedTask>>, overrides: { signer?: TestEnclave; taskId?: bigint; specHash?: Hex; attempt?: number; reason?: number } = {}) {
    const reason = overrides.reason ?? refusalReasons.KEY_UNWRAP_FAILED;
    const signature = await signRefusal(f, (overrides.signer ?? t.enclave).account, {
      taskId: overrides.taskId ?? t.taskId,
      specHash: overrides.specHash ?? taskSpecHash(t.spec),
      attempt: overrides.attempt ?? t.attempt,
      reason,
    });
    return { taskId: t.taskId, spec: t.spec, assignment: t.assignment, reason, signature };
  }

  describe("refuseTask", () => {
    test("a refusal by the accepted enclave ends the task: the deposit goes back and the price to the operator, the rest to the requester", async () => {
      const t = await acceptedTask({ maxPrice: 2n * defaultOffer.price, maxAttempts: 3 });
      const marketBefore = await balance(market);
      const operatorBefore = await balance(operator.account.address);
      const requesterBefore = await balance(f.requester.account.address);
      // Anyone may relay it.
      const refused = await refuseTask(relay, market, await refusal(t));
      const [event] = parseEventLogs({ abi: taskMarketAbi, logs: refused.receipt.logs, eventName: "TaskRefused" });
      assert.deepEqual(
        [event?.args.taskId, event?.args.enclave, event?.args.operator, event?.args.attempt, event?.args.reason, event?.args.price, event?.args.refund],
        [t.taskId, t.enclave.address, operator.account.address, 1, refusalReasons.KEY_UNWRAP_FAILED, defaultOffer.price, t.spec.maxPrice - defaultOffer.price],
      );
      assert.equal((await readTask(f.reader, market, t.taskId)).status, "Refused", "ended, not reopened for the same inputs");
      assert.equal(await balance(operator.account.address), operatorBefore + defaultOffer.price + defaultTaskDeposit, "deposit back, attempt paid");
      assert.equal(await balance(f.requester.account.address), requesterBefore + t.spec.maxPrice - defaultOffer.price);
      assert.equal(await balance(market), marketBefore - t.spec.maxPrice - defaultTaskDeposit);
      console.log(`gasUsed refuse=${refused.gasUsed}`);

      await rejectsWith(refuseTask(relay, market, await refusal(t)), "TaskNotAccepted");
      await rejectsWith(completeTask(operator, market, await signedCompletion(f, t.taskId, t.spec, t.assignment, t.enclave)), "TaskNotAccepted");
      await advanceTime(f, 601n);
      await rejectsWith(reopenTask(relay, market, { taskId: t.taskId, spec: t.spec, assignment: t.assignment }), "TaskNotAccepted");
    });

    test("a refusal by another key, for another task or attempt, with another reason, or for an open, completed, late or revoked task reverts", async () => {
      const t = await acceptedTask();
      const stranger = newEnclave();
      const err = await rejectsWith(refuseTask(relay, market, await refusal(t, { signer: stranger })), "InvalidRefusalSignature");
      assert.equal(err.args.recovered, stranger.address);
      await rejectsWith(refuseTask(relay, market, await refusal(t, { taskId: t.taskId + 1n })), "InvalidRefusalSignature");
      await rejectsWith(refuseTask(relay, market, await refusal(t, { attempt: 2 })), "InvalidRefusalSignature");
      // A refusal the enclave made for another spec (one a host handed it) does not end this task.
      await rejectsWith(refuseTask(relay, market, await refusal(t, { specHash: taskSpecHash({ ...t.spec, envelopeCid: "bafkreihostmade" }) })), "InvalidRefusalSignature");
      await rejectsWith(refuseTask(relay, market, { ...(await refusal(t)), reason: refusalReasons.MALFORMED_ENVELOPE }), "InvalidRefusalSignature");
      await rejectsWith(refuseTask(relay, market, { ...(await refusal(t)), signature: `0x${"00".repeat(65)}` }), "InvalidRefusalSignature");
      await rejectsWith(refuseTask(relay, market, await refusal(t, { reason: 0 })), "InvalidRefusalReason");
      // Another registered enclave did not accept this task: its refusal is not the assignment's.
      const other = newEnclave();
      await register(f, other, operator.account.address);
      await rejectsWith(refuseTask(relay, market, await refusal(t, { signer: other })), "InvalidRefusalSignature");
      await rejectsWith(refuseTask(relay, market, { ...(await refusal(t, { signer: other })), assignment: { ...t.assignment, enclave: other.address } }), "SpecMismatch");

      const completed = await acceptedTask();
      await completeTask(operator, market, await signedCompletion(f, completed.taskId, completed.spec, completed.assignment, completed.enclave));
      await rejectsWith(refuseTask(relay, market, await refusal(completed)), "TaskNotAccepted");

      const enclave = newEnclave();
      await registerWithOffer(f, enclave, operator);
      const spec = makeSpec(f, [enclave.address]);
      const open = await submitTask(f.requester, market, { spec });
      const fake = { taskId: open.taskId, spec, assignment: { enclave: enclave.address, operator: operator.account.address, price: 1n, deposit: 0n }, reason: 1, signature: await signRefusal(f, enclave.account, { taskId: open.taskId, specHash: taskSpecHash(spec), attempt: 0, reason: 1 }) };
      await rejectsWith(refuseTask(relay, market, fake), "TaskNotAccepted");

      const revoked = await acceptedTask();
      await revokeEnclave(f.attester, f.deployment.registry, revoked.enclave.address);
      await rejectsWith(refuseTask(relay, market, await refusal(revoked)), "EnclaveNotActive");

      await advanceTime(f, 601n);
      await rejectsWith(refuseTask(relay, market, await refusal(t)), "DeadlinePassed");
    });

    test("the on-chain refusal digest is the EIP-712 digest of src/protocol/refusal.ts", async () => {
      const specHash = taskSpecHash(makeSpec(f, []));
      const digest = await f.reader.readContract({ address: market, abi: taskMarketAbi, functionName: "refusalDigest", args: [7n, specHash, 3, 5] });
      assert.equal(digest, refusalDigest(BigInt(f.chain.chainId), market, { taskId: 7n, specHash, attempt: 3, reason: 5 }));
    });
  });

  test("a completion relayed with other CIDs than the enclave signed reverts; the signed one completes", async () => {
    const t = await acceptedTask();
    const honest = await signedCompletion(f, t.taskId, t.spec, t.assignment, t.enclave);
    const fake = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    await rejectsWith(completeTask(relay, market, { ...honest, outputCid: fake }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(relay, market, { ...honest, provenanceCid: fake }), "InvalidCompletionSignature");
    await rejectsWith(completeTask(relay, market, { ...honest, outputCid: honest.provenanceCid, provenanceCid: honest.outputCid }), "InvalidCompletionSignature");
    const completed = await completeTask(relay, market, honest);
    const [event] = parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "TaskCompleted" });
    assert.deepEqual([event?.args.outputCid, event?.args.provenanceCid], [honest.outputCid, honest.provenanceCid]);
  });

  describe("a payee cannot block a transition", () => {
    /** Runs `transition` while `account` runs `code`, then restores it (an EOA cannot send with code). */
    async function withCode<T>(account: Address, code: Hex, transition: () => Promise<T>): Promise<T> {
      await setCode(account, code);
      try {
        return await transition();
      } finally {
        await setCode(account, "0x");
      }
    }

    /** The requester's credit grew by `amount`, and it withdraws it to another address. */
    async function withdrawsCredit(account: WriterClient, amount: bigint) {
      assert.equal(await owed(zeroAddress, account.account.address), amount);
      const to = privateKeyToAccount(generatePrivateKey()).address;
      const withdrawn = await withdrawPayment(account, market, zeroAddress, to);
      const [event] = parseEventLogs({ abi: taskMarketAbi, logs: withdrawn.receipt.logs, eventName: "Withdrawn" });
      assert.deepEqual([event?.args.account, event?.args.to, event?.args.amount], [account.account.address, to, amount]);
      assert.equal(await balance(to), amount);
      assert.equal(await owed(zeroAddress, account.account.address), 0n);
    }

    for (const [name, code] of [["burns all its gas", BURNS_ALL_GAS], ["reverts", REVERTS]] as const) {
      test(`a requester that ${name} on receipt: completion, reopen, refund and refusal go through and credit it`, async () => {
        const requester = f.requester.account.address;
        const completing = await acceptedTask({ maxPrice: 2n * defaultOffer.price });
        const completion = await signedCompletion(f, completing.taskId, completing.spec, completing.assignment, completing.enclave);
        const reopening = await acceptedTask({ maxAttempts: 2 });
        const refunding = await acceptedTask();
        const refusing = await acceptedTask({ maxPrice: 2n * defaultOffer.price });
        const refusalParams = await refusal(refusing);

        const { completed, refused } = await withCode(requester, code, async () => ({
          completed: await completeTask(relay, market, completion),
          refused: await refuseTask(relay, market, refusalParams),
        }));
        await advanceTime(f, 601n);
        const { reopened, refunded } = await withCode(requester, code, async () => ({
          reopened: await reopenTask(relay, market, { taskId: reopening.taskId, spec: reopening.spec, assignment: reopening.assignment }),
          refunded: await reopenTask(relay, market, { taskId: refunding.taskId, spec: refunding.spec, assignment: refunding.assignment }),
        }));
        assert.deepEqual([reopened.outcome, refunded.outcome], ["reopened", "refunded"]);
        for (const [what, tx, amount] of [
          ["complete", completed, defaultOffer.price],
          ["refuse", refused, defaultOffer.price],
          ["reopen", reopened, defaultTaskDeposit],
          ["refund", refunded, refunding.spec.maxPrice + defaultTaskDeposit],
        ] as const) {
          assert.ok(tx.gasUsed < boundedGas, `${what} used ${tx.gasUsed} gas`);
          const deferred = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "PaymentDeferred" });
          assert.deepEqual(deferred.map((e) => [e.args.token, e.args.account, e.args.amount]), [[zeroAddress, requester, amount]], what);
        }
        assert.deepEqual(
          (await Promise.all([completing, refusing, reopening, refunding].map((t) => readTask(f.reader, market, t.taskId)))).map((r) => r.status),
          ["Completed", "Refused", "Open", "Refunded"],
        );
        await withdrawsCredit(f.requester, 2n * defaultOffer.price + defaultTaskDeposit + refunding.spec.maxPrice + defaultTaskDeposit);
      });
    }

    test("an operator that burns all its gas on receipt: completion and refusal go through and credit it; the requester is paid", async () => {
      const operatorAddress = operator.account.address;
      const completing = await acceptedTask({ maxPrice: 2n * defaultOffer.price });
      const completion = await signedCompletion(f, completing.taskId, completing.spec, completing.assignment, completing.enclave);
      const refusing = await acceptedTask({ maxPrice: 2n * defaultOffer.price });
      const refusalParams = await refusal(refusing);
      const requesterBefore = await balance(f.requester.account.address);
      const { completed, refused } = await withCode(operatorAddress, BURNS_ALL_GAS, async () => ({
        completed: await completeTask(relay, market, completion),
        refused: await refuseTask(relay, market, refusalParams),
      }));
      for (const tx of [completed, refused]) {
        assert.ok(tx.gasUsed < boundedGas, `used ${tx.gasUsed} gas`);
        const deferred = parseEventLogs({ abi: taskMarketAbi, logs: tx.receipt.logs, eventName: "PaymentDeferred" });
        assert.deepEqual(deferred.map((e) => [e.args.account, e.args.amount]), [[operatorAddress, defaultOffer.price + defaultTaskDeposit]]);
      }
      assert.equal(await balance(f.requester.account.address), requesterBefore + 2n * defaultOffer.price, "the requester's refunds were pushed");
      const before = await balance(operatorAddress);
      const withdrawn = await withdrawPayment(operator, market);
      assert.equal(await balance(operatorAddress), before + 2n * (defaultOffer.price + defaultTaskDeposit) - feeOf(withdrawn.receipt));
    });

    test("a token that reverts its transfers (a blacklist) does not block completion: both payments are credited in the token", async () => {
      const token = getAddress(await deployTestToken(f.deployer));
      const requester = f.requester.account.address;
      await f.requester.waitForTransactionReceipt({ hash: await f.requester.writeContract({ address: token, abi: testTokenAbi, functionName: "mint", args: [requester, 10n ** 21n] }) });
      const enclave = newEnclave();
      await registerWithOffer(f, enclave, operator, { token, price: 3n });
      const spec = makeSpec(f, [enclave.address], { token, maxPrice: 10n });
      await approveToken(f.requester, token, market, spec.maxPrice);
      const submitted = await submitTask(f.requester, market, { spec });
      const accepted = await acceptTask(operator, market, { taskId: submitted.taskId, spec, enclave: enclave.address });
      const completion = await signedCompletion(f, submitted.taskId, spec, accepted.assignment, enclave);
      const tokenCode = await f.reader.getCode({ address: token });
      await setCode(token, REVERTS);
      const completed = await completeTask(relay, market, completion);
      await setCode(token, tokenCode!);
      const deferred = parseEventLogs({ abi: taskMarketAbi, logs: completed.receipt.logs, eventName: "PaymentDeferred" });
      assert.deepEqual(deferred.map((e) => [e.args.token, e.args.account, e.args.amount]), [[token, operator.account.address, 3n], [token, requester, 7n]]);
      assert.equal((await readTask(f.reader, market, submitted.taskId)).status, "Completed");
      await withdrawPayment(operator, market, token);
      assert.equal(await readTokenBalance(f.reader, token, operator.account.address), 3n);
    });
  });
});
