import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { getAbiItem, toEventSelector, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { bloomMayHoldEvents, LogsBloomError, parseLogsBloom } from "../../src/chain/logs-bloom.ts";
import { headsRuleOut, newHeadSource, type HeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { makeSpec, newEnclave, startFixture, type Fixture } from "../contracts/fixture.ts";

const selector = (name: "TaskSubmitted" | "TaskCompleted" | "TaskAccepted") => toEventSelector(getAbiItem({ abi: taskMarketAbi, name }));

let f: Fixture;
let server: ChainRpcServer;
before(async () => {
  f = await startFixture();
  server = await startChainRpcServer({ provider: f.chain.provider });
});
after(async () => {
  await server?.close();
  await f?.close();
});

test("a block's bloom may hold every log it has, and rules out an event or an emitter it does not have", async () => {
  const { receipt } = await submitTask(f.requester, f.deployment.market, { spec: makeSpec(f, []) });
  const block = await f.reader.getBlock({ blockNumber: receipt.blockNumber });
  const bloom = parseLogsBloom(block.logsBloom!);
  assert.ok(receipt.logs.length > 0);
  for (const log of receipt.logs) assert.equal(bloomMayHoldEvents(bloom, log.address, [log.topics[0]!]), true, `log ${log.logIndex} of the block`);
  assert.equal(bloomMayHoldEvents(bloom, f.deployment.market, [selector("TaskCompleted"), selector("TaskAccepted")]), false, "no completion or accept in a block that only submits");
  assert.equal(bloomMayHoldEvents(bloom, newEnclave().address, [selector("TaskSubmitted")]), false, "no log from another address");
  assert.equal(bloomMayHoldEvents(parseLogsBloom(`0x${"00".repeat(256)}`), f.deployment.market, [selector("TaskSubmitted")]), false);
  assert.throws(() => parseLogsBloom("0x1234"), (e) => e instanceof LogsBloomError && /256 bytes/.test(e.message));
});

test("pushed heads carry their blooms, and rule a range out only when every block of it was pushed and holds none of the events", async () => {
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  try {
    for (const deadline = Date.now() + 5_000; !heads.live && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const { receipt } = await submitTask(f.requester, f.deployment.market, { spec: makeSpec(f, []) });
    const submitted = receipt.blockNumber;
    for (const deadline = Date.now() + 5_000; heads.bloomOf(submitted) === undefined && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const market = f.deployment.market;
    assert.ok(heads.bloomOf(submitted), "the submission's head came with its bloom");
    assert.equal(headsRuleOut(heads, submitted, submitted, market, [selector("TaskCompleted")]), true);
    assert.equal(headsRuleOut(heads, submitted, submitted, market, [selector("TaskSubmitted")]), false);
    assert.equal(headsRuleOut(heads, submitted - 1n, submitted, market, [selector("TaskCompleted")]), false, "a block mined before the subscription has no known bloom");
    assert.equal(headsRuleOut(undefined, submitted, submitted, market, [selector("TaskCompleted")]), false, "without heads, logs are read");
    const noBlooms: HeadSource = { live: true, latest: submitted, subscribe: () => () => {}, bloomOf: () => undefined };
    assert.equal(headsRuleOut(noBlooms, submitted, submitted, market, [selector("TaskCompleted")]), false, "a head without a bloom rules nothing out");
  } finally {
    await heads.close();
  }
});

test("a bloom is checked against the address and each selector given", () => {
  const empty = new Uint8Array(256);
  const full = new Uint8Array(256).fill(0xff);
  const address = newEnclave().address;
  const selectors: Hex[] = [selector("TaskSubmitted")];
  assert.equal(bloomMayHoldEvents(empty, address, selectors), false);
  assert.equal(bloomMayHoldEvents(full, address, selectors), true);
  assert.equal(bloomMayHoldEvents(full, address, []), false, "no selector, no event");
});
