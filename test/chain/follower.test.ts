/**
 * The chain follower against the in-process EDR chain, read through a provider wrapper that records the
 * eth_getLogs ranges asked for and can make the chain unreachable (no mock of the chain itself): ranges,
 * bloom skips, order, restart without loss or duplicate, backoff, and head push against polling.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { getAbiItem, hexToBigInt, toEventSelector, toHex, type Hex } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { submitTasks } from "../../src/chain/actions/submit-tasks.ts";
import { createReaderClient } from "../../src/chain/clients.ts";
import type { Eip1193Provider } from "../../src/chain/eip1193.ts";
import { ChainFollower, FollowerError, type ChainFollowerOptions, type FollowedLog, type FollowerSubscriber } from "../../src/chain/follower.ts";
import { ChainBehindError, fileCheckpoint, FollowerCheckpointError, memoryCheckpoint } from "../../src/chain/follower-checkpoint.ts";
import { newHeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { makeSpec, startFixture, type Fixture } from "../contracts/fixture.ts";

const submitted = getAbiItem({ abi: taskMarketAbi, name: "TaskSubmitted" });
const submittedSelector = toEventSelector(submitted);
const completed = getAbiItem({ abi: taskMarketAbi, name: "TaskCompleted" });

let f: Fixture;
let dir: string;

/** The chain's provider behind a wrapper: it records eth_getLogs ranges, and fails every request while `down`. */
const wire = { down: false, refused: 0, getLogs: [] as { from: bigint; to: bigint }[] };
const flaky: Eip1193Provider = {
  request(args) {
    if (wire.down) {
      wire.refused++;
      return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" }));
    }
    if (args.method === "eth_getLogs") {
      const [filter] = args.params as [{ fromBlock: Hex; toBlock: Hex }];
      wire.getLogs.push({ from: hexToBigInt(filter.fromBlock), to: hexToBigInt(filter.toBlock) });
    }
    return f.chain.provider.request(args);
  },
};

before(async () => {
  f = await startFixture();
  dir = await mkdtemp(join(tmpdir(), "cloister-follower-"));
});
after(async () => {
  await f?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function follower(options: Partial<ChainFollowerOptions> = {}, errors: unknown[] = []): ChainFollower {
  const reader = createReaderClient({ endpoint: { provider: flaky }, chain: f.chain.chain });
  return new ChainFollower({ reader, pollIntervalMs: 20, onError: (e) => errors.push(e), ...options });
}

let salt = 0;
/** `blocks` blocks of `perBlock` task submissions each; their logs' keys in chain order. */
async function submitBlocks(blocks: number, perBlock = 1): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < blocks; i++) {
    const items = Array.from({ length: perBlock }, () => ({ spec: makeSpec(f, []), salt: toHex(++salt, { size: 32 }) }));
    const { receipt } = await submitTasks(f.requester, f.deployment.market, { items });
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() === f.deployment.market.toLowerCase() && log.topics[0] === submittedSelector) keys.push(`${log.blockNumber}:${log.logIndex}`);
    }
  }
  return keys;
}

const head = () => f.reader.getBlockNumber({ cacheTime: 0 });
const keyOf = (log: FollowedLog) => `${log.blockNumber}:${log.logIndex}`;

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function submissions(id: string, fromBlock: bigint, handle: FollowerSubscriber["handle"]): FollowerSubscriber {
  return { id, address: f.deployment.market, events: [submitted], fromBlock, handle };
}

test("reads in ranges of at most maxBlockRange blocks, and hands over every log once, in block and log order", async () => {
  const start = (await head()) + 1n;
  const keys = await submitBlocks(7, 3);
  const seen: string[] = [];
  const fl = follower({ maxBlockRange: 2n });
  wire.getLogs = [];
  const sub = fl.subscribe(submissions("ranges", start, (log) => void seen.push(keyOf(log))));
  fl.start();
  const last = await head();
  await until(() => sub.position >= last, "the follower to reach the head");
  await fl.stop();
  assert.deepEqual(seen, keys, "every log once, in order");
  assert.ok(wire.getLogs.length >= 4, `7 blocks in ranges of 2 (${wire.getLogs.length} reads)`);
  for (const r of wire.getLogs) assert.ok(r.to - r.from < 2n, `range ${r.from}..${r.to} is at most 2 blocks`);
  assert.equal(wire.getLogs[0]!.from, start);
});

test("a block is passed only once every handler of it has completed; a failed handler is called again, the others not", async () => {
  const start = (await head()) + 1n;
  const keys = await submitBlocks(3, 2);
  const blockOf = (key: string) => BigInt(key.split(":")[0]!);
  const calls = new Map<string, number>();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let failFirst = true;
  const fl = follower({ maxBackoffMs: 40 });
  const sub = fl.subscribe(submissions("hold", start, async (log) => {
    const key = keyOf(log);
    calls.set(key, (calls.get(key) ?? 0) + 1);
    if (key === keys[2]) await held; // the first log of the second block
    if (key === keys[4] && failFirst) {
      failFirst = false;
      throw new Error("the handler failed once");
    }
  }));
  fl.start();
  await until(() => keys.every((k) => calls.has(k)), "every handler to be called");
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sub.position, blockOf(keys[2]!) - 1n, "held below the unfinished handler's block");
  release();
  const last = await head();
  await until(() => sub.position >= last, "the position to pass the released block");
  await fl.stop();
  assert.equal(calls.get(keys[4]!), 2, "the failed handler was called again");
  assert.deepEqual(keys.filter((k) => k !== keys[4]).map((k) => calls.get(k)), [1, 1, 1, 1, 1], "the others once");
});

test("stopped mid-range and restarted, the follower handles every log it missed and none twice", async () => {
  const path = join(dir, "restart.json");
  const start = (await head()) + 1n;
  const keys = await submitBlocks(12, 2);
  const handled = new Map<string, number>();
  const calls = new Map<string, number>();
  let stopping: Promise<void> | undefined;
  // Ranges of 3 blocks: the first run stops while the first range's handlers run (the last of them aborts,
  // as a node's handlers do on shutdown), so it reads 3 of the 12 blocks and finishes 5 of their 6 logs.
  const first = follower({ checkpoint: fileCheckpoint(path), maxBlockRange: 3n });
  const handle = async (log: FollowedLog) => {
    const key = keyOf(log);
    calls.set(key, (calls.get(key) ?? 0) + 1);
    if (key === keys[0]) stopping = first.stop();
    await new Promise((r) => setTimeout(r, 15));
    if (stopping && key === keys[5] && calls.get(key) === 1) throw new Error("aborted: the follower is stopping");
    handled.set(key, (handled.get(key) ?? 0) + 1);
  };
  first.subscribe(submissions("restart", start, handle));
  first.start();
  await until(() => stopping !== undefined, "the first handler");
  await stopping;
  assert.deepEqual([...handled.keys()], keys.slice(0, 5), "the first range, but its aborted last log");
  const saved = JSON.parse(await readFile(path, "utf8")) as { version: number; positions: Record<string, { block: string; handled?: string[] }> };
  assert.equal(saved.version, 1);
  assert.equal(BigInt(saved.positions.restart!.block), BigInt(keys[5]!.split(":")[0]!) - 1n, "saved below the aborted log's block");
  assert.deepEqual(saved.positions.restart!.handled, [keys[4]], "with the log of that block already handled");

  const more = await submitBlocks(2, 1);
  const second = follower({ checkpoint: fileCheckpoint(path), maxBlockRange: 3n });
  const sub = second.subscribe(submissions("restart", start, handle));
  second.start();
  const last = await head();
  await until(() => sub.position >= last, "the restarted follower to reach the head");
  await second.stop();
  assert.deepEqual([...handled.keys()], [...keys, ...more], "no log lost, in order");
  assert.deepEqual([...handled.values()].filter((n) => n !== 1), [], "none handled twice");
  // The aborted log's block is read again; its other log (handled before the stop) is not handed over again.
  assert.equal(calls.get(keys[5]!), 2);
  assert.equal(calls.get(keys[4]!), 1);
});

test("a subscriber's state is saved with its position and restored on restart", async () => {
  const path = join(dir, "state.json");
  const start = (await head()) + 1n;
  const keys = await submitBlocks(3);
  const stateful = (seen: string[]): FollowerSubscriber => ({
    ...submissions("stateful", start, (log) => void seen.push(keyOf(log))),
    state: { save: () => [...seen], restore: (saved) => seen.push(...(saved as string[])) },
  });
  const seen: string[] = [];
  const first = follower({ checkpoint: fileCheckpoint(path) });
  const sub = first.subscribe(stateful(seen));
  first.start();
  const last = await head();
  await until(() => sub.position >= last, "the head");
  await first.stop();
  const restored: string[] = [];
  const second = follower({ checkpoint: fileCheckpoint(path) });
  second.subscribe(stateful(restored));
  assert.deepEqual(restored, keys);
  assert.throws(() => second.subscribe(stateful([])), (e) => e instanceof FollowerError && /already follows/.test(e.message));
});

test("with pushed heads, blocks whose blooms rule out a subscriber's events are not read", { timeout: 20_000 }, async () => {
  const server = await startChainRpcServer({ provider: f.chain.provider });
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  const fl = follower({ heads, pollIntervalMs: 10_000 });
  try {
    await until(() => heads.live, "the newHeads subscription");
    const start = (await head()) + 1n;
    const completions: FollowedLog[] = [];
    const sub = fl.subscribe({ id: "bloom", address: f.deployment.market, events: [completed], fromBlock: start, handle: (log) => void completions.push(log) });
    fl.start();
    await until(() => sub.position >= start - 1n, "the first crawl");
    wire.getLogs = [];
    await submitBlocks(3);
    const last = await head();
    await until(() => sub.position >= last, "the follower to move past the submissions");
    assert.deepEqual(wire.getLogs, [], "no eth_getLogs for blocks that hold no completion");
    assert.deepEqual(completions, []);

    // A subscriber whose events the blooms may hold is read for.
    const seen: string[] = [];
    const reading = fl.subscribe(submissions("bloom-read", last + 1n, (log) => void seen.push(keyOf(log))));
    const keys = await submitBlocks(1);
    await until(() => seen.length === 1, "the submission");
    assert.deepEqual(seen, keys);
    assert.ok(wire.getLogs.length > 0);
    assert.ok(reading.position >= BigInt(keys[0]!.split(":")[0]!));
  } finally {
    await fl.stop();
    await heads.close();
    await server.close();
  }
});

test("a new head wakes the follower at once; without heads it polls at its own interval", { timeout: 20_000 }, async () => {
  const server = await startChainRpcServer({ provider: f.chain.provider });
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  const seenAt = new Map<bigint, number>();
  const fl = follower({ heads, pollIntervalMs: 10_000, safetyPollIntervalMs: 10_000 });
  try {
    await until(() => heads.live, "the newHeads subscription");
    fl.subscribe(submissions("push", (await head()) + 1n, (log) => void seenAt.set(log.blockNumber, performance.now())));
    fl.start();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 3; i++) {
      const { receipt } = await submitTask(f.requester, f.deployment.market, { spec: makeSpec(f, []) });
      const minedAt = performance.now();
      await until(() => seenAt.has(receipt.blockNumber), "the task, well before the 10 s poll", 3_000);
      // The head is pushed as the block is mined; the follower reads at once.
      assert.ok(seenAt.get(receipt.blockNumber)! - minedAt < 1_000, `handled ${Math.round(seenAt.get(receipt.blockNumber)! - minedAt)} ms after the receipt`);
    }
  } finally {
    await fl.stop();
    await heads.close();
    await server.close();
  }

  // The WebSocket gone, the same follower polls at pollIntervalMs.
  const polled: bigint[] = [];
  const poller = follower({ heads, pollIntervalMs: 50, safetyPollIntervalMs: 60_000 });
  poller.subscribe(submissions("poll", (await head()) + 1n, (log) => void polled.push(log.blockNumber)));
  poller.start();
  try {
    assert.equal(heads.live, false);
    const { receipt } = await submitTask(f.requester, f.deployment.market, { spec: makeSpec(f, []) });
    await until(() => polled.includes(receipt.blockNumber), "the task, by polling", 3_000);
  } finally {
    await poller.stop();
  }
});

test("while the chain is unreachable the follower backs off, then catches up without loss or duplicate", async () => {
  const errors: unknown[] = [];
  const fl = follower({ pollIntervalMs: 20, maxBackoffMs: 200 }, errors);
  const handled = new Map<string, number>();
  const sub = fl.subscribe(submissions("outage", (await head()) + 1n, (log) => void handled.set(keyOf(log), (handled.get(keyOf(log)) ?? 0) + 1)));
  fl.start();
  try {
    const before = await submitBlocks(2);
    await until(() => before.every((k) => handled.has(k)), "the first logs");
    const positionBefore = sub.position;
    wire.down = true;
    const refusedBefore = wire.refused;
    const during = await submitBlocks(3);
    await new Promise((r) => setTimeout(r, 1_200));
    const attempts = wire.refused - refusedBefore;
    assert.ok(attempts >= 3, `kept trying (${attempts})`);
    assert.ok(attempts < 25, `backed off: ${attempts} attempts in 1.2 s at a 20 ms poll`);
    assert.equal(sub.position, positionBefore, "the position did not move");
    assert.ok(errors.length >= 3 && errors.every((e) => (e as { code?: string }).code === "ECONNREFUSED" || /ECONNREFUSED/.test(String((e as Error).message))));
    wire.down = false;
    await until(() => during.every((k) => handled.has(k)), "the logs mined during the outage");
    assert.deepEqual([...handled.values()].filter((n) => n !== 1), []);
  } finally {
    wire.down = false;
    await fl.stop();
  }
});

test("a subscriber with everyMs is read at most that often", async () => {
  const fl = follower({ pollIntervalMs: 10 });
  let crawls = 0;
  fl.subscribe({ ...submissions("lazy", (await head()) + 1n, () => {}), everyMs: 300, onCrawled: () => crawls++ });
  fl.start();
  await new Promise((r) => setTimeout(r, 1_000));
  await fl.stop();
  assert.ok(crawls >= 2 && crawls <= 4, `${crawls} reads in 1 s at everyMs 300`);
});

test("a saved position ahead of the chain is a ChainBehindError, at start and on every crawl", async () => {
  const path = join(dir, "ahead.json");
  await writeFile(path, JSON.stringify({ version: 1, positions: { ahead: { block: "1000000" } } }));
  const errors: unknown[] = [];
  const fl = follower({ checkpoint: fileCheckpoint(path), maxBackoffMs: 20 }, errors);
  const now = await head();
  assert.throws(() => fl.assertNotAheadOf(now), (e) => e instanceof ChainBehindError && e.path === path && e.savedBlock === 1_000_000n && e.head === now && /delete .* to rescan/.test(e.message));
  fl.subscribe(submissions("ahead", 1n, () => {}));
  fl.start();
  await until(() => errors.length >= 2, "two crawls");
  await fl.stop();
  assert.ok(errors.every((e) => e instanceof ChainBehindError && e.code === "CHAIN_BEHIND_SAVED_POSITION" && /went backwards/.test(e.message)));
});

test("an unreadable checkpoint is a typed error naming the file", async () => {
  const path = join(dir, "corrupt.json");
  await writeFile(path, "{not json");
  assert.throws(() => follower({ checkpoint: fileCheckpoint(path) }), (e) => e instanceof FollowerCheckpointError && e.code === "FOLLOWER_CHECKPOINT" && e.message.includes(path));
  await writeFile(path, JSON.stringify({ version: 1, positions: { x: { block: "twelve" } } }));
  assert.throws(() => follower({ checkpoint: fileCheckpoint(path) }), FollowerCheckpointError);
  const memory = memoryCheckpoint();
  assert.deepEqual([...memory.load()], []);
});
