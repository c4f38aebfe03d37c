import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Hex } from "viem";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { readTaskDeposit } from "../../src/chain/actions/market-config.ts";
import { writeContractTransaction } from "../../src/chain/actions/send-transaction.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { submitTasks } from "../../src/chain/actions/submit-tasks.ts";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { computeTaskId } from "../../src/protocol/task.ts";
import { makeSpec, newEnclave, registerWithOffer, rejectsWith, startFixture, type Fixture } from "../contracts/fixture.ts";

describe("contract writes", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  /** A writer for a fresh copy of the requester's account (nothing learned yet) whose requests are counted by method. */
  function countedRequester() {
    const counts = new Map<string, number>();
    const provider = {
      request(args: { method: string; params?: object | readonly unknown[] }) {
        counts.set(args.method, (counts.get(args.method) ?? 0) + 1);
        return f.chain.provider.request(args);
      },
    };
    const writer = createWriterClient({ endpoint: { provider }, chain: f.chain.chain, account: f.chain.accounts.requester });
    /** The simulations since the last take. */
    const take = () => {
      const seen = Object.fromEntries(counts);
      counts.clear();
      return { estimates: seen.eth_estimateGas ?? 0, calls: seen.eth_call ?? 0 };
    };
    return { writer, counts, take };
  }

  test("concurrent writes from one client get consecutive nonces from one nonce read, and no per-transaction fee or gas requests beyond the estimate", async () => {
    const { writer: requester, counts } = countedRequester();
    const spec = makeSpec(f, []);
    const salts = Array.from({ length: 5 }, (_, i) => `0x${(i + 1).toString(16).padStart(64, "0")}` as Hex);
    const submitted = await Promise.all(salts.map((salt) => submitTask(requester, f.deployment.market, { spec, salt })));
    const nonces = await Promise.all(submitted.map((s) => f.reader.getTransaction({ hash: s.hash }).then((tx) => tx.nonce)));
    assert.deepEqual([...nonces].sort((a, b) => a - b), nonces.map((_, i) => nonces[0]! + i).sort((a, b) => a - b));
    submitted.forEach((s, i) => assert.equal(s.taskId, computeTaskId(BigInt(f.chain.chainId), f.deployment.market, spec.requester, salts[i]!)));
    assert.equal(counts.get("eth_getTransactionCount"), 1);
    assert.equal(counts.get("eth_estimateGas"), 5);
    assert.equal(counts.get("eth_sendRawTransaction"), 5);
    assert.ok((counts.get("eth_maxPriorityFeePerGas") ?? 0) <= 1, "fees are fetched once, not per transaction");
    assert.equal(counts.get("eth_call"), undefined, "no separate simulation");
  });

  test("after a function's first write, a client simulates with eth_call at the gas limit it learned instead of estimating", async () => {
    const { writer, take } = countedRequester();
    const spec = makeSpec(f, []);
    const first = await submitTask(writer, f.deployment.market, { spec });
    assert.deepEqual(take(), { estimates: 1, calls: 0 });
    const second = await submitTask(writer, f.deployment.market, { spec });
    assert.deepEqual(take(), { estimates: 0, calls: 1 });
    const [sent, learned] = await Promise.all([first, second].map((s) => f.reader.getTransaction({ hash: s.hash })));
    assert.ok(learned!.gas >= first.gasUsed, `the learned limit ${learned!.gas} covers the gas the first write used (${first.gasUsed})`);
    assert.ok(learned!.gas >= sent!.gas, "and is at least the first write's estimated limit");
  });

  test("a learned limit too low for a call falls back to the estimate, and the call succeeds", async () => {
    const { writer, take } = countedRequester();
    const candidates = Array.from({ length: 40 }, () => newEnclave().address);
    const items = (n: number, named: Hex[]) => Array.from({ length: n }, (_, i) => ({ spec: makeSpec(f, named), salt: `0x${(0xbeef00 + named.length * 100 + i).toString(16).padStart(64, "0")}` as Hex }));
    // Tasks open to any enclave teach a gas per task well below what tasks naming 40 candidates each cost (the spec is hashed and logged).
    await submitTasks(writer, f.deployment.market, { items: items(20, []) });
    assert.deepEqual(take(), { estimates: 1, calls: 0 });
    const heavier = await submitTasks(writer, f.deployment.market, { items: items(20, candidates) });
    assert.equal(heavier.receipt.status, "success");
    assert.deepEqual(take(), { estimates: 1, calls: 1 }, "the simulation at the learned limit failed, so the estimate set the limit");
  });

  test("a learned limit that, scaled to a batch, passes the block's gas limit is not tried: the estimate sets the limit", async () => {
    const { writer, take } = countedRequester();
    const items = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ spec: makeSpec(f, []), salt: `0x${(0xfab000 + from + i).toString(16).padStart(64, "0")}` as Hex }));
    // One task alone teaches the whole transaction's cost as the cost per task (the intrinsic gas included).
    await submitTasks(writer, f.deployment.market, { items: items(1, 0) });
    assert.deepEqual(take(), { estimates: 1, calls: 0 });
    const { gasLimit } = await f.reader.getBlock();
    // Told it carries far more items than it does, the learned limit would pass the block's: a node's eth_call may
    // accept it, the transaction would not be mined.
    const batch = items(3, 10);
    const value = batch.reduce((sum, b) => sum + b.spec.maxPrice, 0n);
    const tx = await writeContractTransaction(writer, "submitTasks", { address: f.deployment.market, abi: taskMarketAbi, functionName: "submitTasks", args: [batch.map((b) => b.spec), batch.map((b) => b.salt)], value }, { items: 100_000 });
    assert.equal(tx.receipt.status, "success");
    assert.deepEqual(take(), { estimates: 1, calls: 0 }, "no simulation at a limit over the block's");
    assert.ok((await f.reader.getTransaction({ hash: tx.hash })).gas <= gasLimit);
  });

  test("a revert on the learned path is still reported with the custom error's name", async () => {
    const { writer, take } = countedRequester();
    const spec = makeSpec(f, []);
    const salt = `0x${"c0ffee".padStart(64, "0")}` as Hex;
    await submitTask(writer, f.deployment.market, { spec, salt: `0x${"c0ffef".padStart(64, "0")}` as Hex });
    await submitTask(writer, f.deployment.market, { spec, salt });
    take();
    await rejectsWith(submitTask(writer, f.deployment.market, { spec, salt }), "TaskExists");
    const { calls } = take();
    assert.ok(calls >= 1, "the learned limit was tried first");
  });

  describe("unsimulated (simulate: false)", () => {
    const batchOf = (n: number, from: number, named: Hex[] = []) => Array.from({ length: n }, (_, i) => ({ spec: makeSpec(f, named), salt: `0x${(from + i).toString(16).padStart(64, "0")}` as Hex }));
    const submitBatch = (writer: ReturnType<typeof countedRequester>["writer"], batch: ReturnType<typeof batchOf>, items: number) =>
      writeContractTransaction(
        writer,
        "submitTasks",
        { address: f.deployment.market, abi: taskMarketAbi, functionName: "submitTasks", args: [batch.map((b) => b.spec), batch.map((b) => b.salt)], value: batch.reduce((sum, b) => sum + b.spec.maxPrice, 0n) },
        { items, simulate: false },
      );

    test("once a gas per item is learned, a write is sent with no simulation at all", async () => {
      const { writer, take } = countedRequester();
      await submitBatch(writer, batchOf(4, 0x5a1000), 4);
      assert.deepEqual(take(), { estimates: 1, calls: 0 }, "nothing learned yet: estimated");
      const tx = await submitBatch(writer, batchOf(4, 0x5a2000), 4);
      assert.equal(tx.receipt.status, "success");
      assert.deepEqual(take(), { estimates: 0, calls: 0 });
      assert.ok((await f.reader.getTransaction({ hash: tx.hash })).gas >= 2n * tx.gasUsed - 60_000n, "sent with twice the learned gas as margin");
    });

    test("out of gas at the learned limit, it is sent again, simulated, and succeeds", async () => {
      const { writer, take, counts } = countedRequester();
      await submitBatch(writer, batchOf(10, 0x5b1000), 10);
      take();
      counts.clear();
      // Told it carries two items, the limit learned per item (twice over) is too low for ten: mined, out of gas.
      const nonce = await f.reader.getTransactionCount({ address: f.chain.accounts.requester.address });
      const tx = await submitBatch(writer, batchOf(10, 0x5b2000), 2);
      assert.equal(tx.receipt.status, "success");
      assert.equal(counts.get("eth_sendRawTransaction"), 2, "the first send ran out of gas and was mined; the second carried it");
      assert.equal(take().estimates, 1, "the second send's limit came from an estimate");
      assert.equal((await f.reader.getTransaction({ hash: tx.hash })).nonce, nonce + 1);
    });

    test("a revert is reported with the custom error's name", async () => {
      const { writer } = countedRequester();
      const batch = batchOf(2, 0x5c1000);
      await submitBatch(writer, batch, 2);
      await rejectsWith(submitBatch(writer, batch, 2), "TaskExists");
      const again = await submitBatch(writer, batchOf(2, 0x5c2000), 2);
      assert.equal(again.receipt.status, "success", "the client's nonce survived the reverted send");
    });
  });

  test("a nonce used behind the client's back is recovered from on the next send", async () => {
    const other = f.writer(f.chain.accounts.requester);
    const spec = makeSpec(f, []);
    await submitTask(f.requester, f.deployment.market, { spec });
    await submitTask(other, f.deployment.market, { spec });
    const again = await submitTask(f.requester, f.deployment.market, { spec });
    assert.equal(again.receipt.status, "success");
  });

  test("a transaction that reverts after it was sent is reported with the custom error's name", async () => {
    const [a, b] = [newEnclave(), newEnclave()];
    await registerWithOffer(f, a, f.operators[0]!);
    await registerWithOffer(f, b, f.operators[1]!);
    const spec = makeSpec(f, [a.address, b.address]);
    const { taskId } = await submitTask(f.requester, f.deployment.market, { spec });
    // Both accepts are estimated against the latest block, where the task is open (with automining off,
    // the pending block would already hold the first accept); mined in one block, the second reverts.
    const deposit = await readTaskDeposit(f.reader, f.deployment.market);
    const accept = (operator: number, enclave: Hex) =>
      writeContractTransaction(
        f.operators[operator]!,
        "acceptTask",
        { address: f.deployment.market, abi: taskMarketAbi, functionName: "acceptTask", args: [taskId, spec, enclave], value: deposit },
        { blockTag: "latest" },
      );
    await f.chain.provider.request({ method: "evm_setAutomine", params: [false] });
    try {
      const first = accept(0, a.address);
      const second = accept(1, b.address);
      for (;;) {
        const pending = (await f.chain.provider.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: Hex[] };
        if (pending.transactions.length >= 2) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await f.chain.provider.request({ method: "evm_mine", params: [] });
      const [won, lost] = await Promise.allSettled([first, second]);
      assert.equal(won.status, "fulfilled");
      assert.equal(lost.status, "rejected");
      await rejectsWith(Promise.reject(lost.reason), "TaskNotOpen");
    } finally {
      await f.chain.provider.request({ method: "evm_setAutomine", params: [true] });
    }
  });

  test("a revert in the estimate is decoded before anything is sent", async () => {
    const stranger = newEnclave();
    const spec = makeSpec(f, []);
    const { taskId } = await submitTask(f.requester, f.deployment.market, { spec });
    await rejectsWith(acceptTask(f.operators[2]!, f.deployment.market, { taskId, spec, enclave: stranger.address }), "NoOffer");
  });

  test("the chain clock follows wall time: blocks mined within a second share its timestamp", async () => {
    const mined: bigint[] = [];
    for (let i = 0; i < 8; i++) {
      await f.chain.provider.request({ method: "evm_mine", params: [] });
      mined.push((await f.reader.getBlock()).timestamp);
    }
    const now = BigInt(Math.floor(Date.now() / 1000));
    assert.ok(mined[mined.length - 1]! <= now + 1n, `after 8 quick blocks the chain clock is at ${mined.at(-1)}, wall time ${now}`);
    mined.slice(1).forEach((t, i) => assert.ok(t >= mined[i]!, "timestamps never go back"));
  });
});
