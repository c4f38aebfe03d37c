/**
 * Group commit end to end on the embedded network (one node, in-process chain): tasks run at once share
 * submit, accept and complete transactions, and each task still gets its own verified output.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { readTaskDeposit, setTaskDeposit } from "../../src/chain/actions/market-config.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import type { HostEvent } from "../../src/host/log.ts";

let network: EmbeddedNetwork;
const events: HostEvent[] = [];

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 1, onHostEvent: (_node, event) => events.push(event) });
});
after(async () => {
  await network?.close();
});

test("concurrent tasks share submit, accept and complete transactions, and each gets its own verified output", async () => {
  const program = new TextEncoder().encode("export default function (input) { return input; }");
  const inputs = Array.from({ length: 8 }, (_, i) => `batched task ${i}`);
  const submitHashes: string[] = [];
  const results = await Promise.all(
    inputs.map((input) =>
      network.client.runTask({
        program,
        input: new TextEncoder().encode(input),
        timeoutMs: 60_000,
        onProgress: (p) => {
          if (p.step === "submitted") submitHashes.push(p.task.transactionHash);
        },
      }),
    ),
  );
  assert.deepEqual(results.map((r) => new TextDecoder().decode(r.output)), inputs, "each task got its own output back");
  assert.ok(new Set(submitHashes).size < inputs.length, `${new Set(submitHashes).size} submit transactions for ${inputs.length} tasks`);

  const ids = new Set(results.map((r) => r.taskId.toString()));
  const mine = events.filter((e) => "taskId" in e && e.taskId !== undefined && ids.has(e.taskId));
  const accepted = mine.filter((e) => e.type === "task-accepted");
  const completed = mine.filter((e) => e.type === "task-completed");
  assert.equal(accepted.length, inputs.length, "every task accepted once");
  assert.equal(completed.length, inputs.length, "every task completed once");
  assert.ok(accepted.some((e) => e.batchSize > 1), `some accepts shared a transaction: ${accepted.map((e) => e.batchSize)}`);
  assert.ok(new Set(accepted.map((e) => e.transactionHash)).size < inputs.length);
  for (const result of results) assert.ok(result.checks.length >= 6, "every result went through the client's checks");
});

test("a node keeps the market's task deposit, and reads it again when the admin changes it", async () => {
  const { chain, deployment } = network;
  const admin = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
  const program = new TextEncoder().encode("export default function (input) { return input; }");
  const run = (input: string) => network.client.runTask({ program, input: new TextEncoder().encode(input), timeoutMs: 15_000 });
  await run("before the change");
  const raised = (await readTaskDeposit(admin, deployment.market)) + 1n;
  await setTaskDeposit(admin, deployment.market, raised);
  const result = await run("after the change");
  assert.equal(new TextDecoder().decode(result.output), "after the change");
  const [accepted] = await admin.getContractEvents({ address: deployment.market, abi: taskMarketAbi, eventName: "TaskAccepted", args: { taskId: result.taskId }, fromBlock: 0n, strict: true });
  assert.equal(accepted?.args.deposit, raised, "the accept after the change paid the new deposit");
});
