/**
 * The task watcher on the chain follower, against the real in-process chain read through a provider that
 * can be made unreachable: no event is lost, none is handled twice, and the checkpoint only moves past
 * events that were handled.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toHex, zeroAddress } from "viem";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import { createReaderClient, createWriterClient, type WriterClient } from "../../src/chain/clients.ts";
import { deployCloister, type CloisterDeployment } from "../../src/chain/deploy.ts";
import type { Eip1193Provider } from "../../src/chain/eip1193.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { ChainFollower } from "../../src/chain/follower.ts";
import { fileCheckpoint } from "../../src/chain/follower-checkpoint.ts";
import { newHeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { isTransientError, withRetry } from "../../src/host/retry.ts";
import { watchSubmittedTasks, type SubmittedTask } from "../../src/host/task-watcher.ts";
import { anyTeeType, defaultCategories, type TaskSpec } from "../../src/protocol/task.ts";

let chain: LocalChain;
let deployment: CloisterDeployment;
let requester: WriterClient;
let dir: string;

/** The chain's provider behind a switch: while `down`, every request fails as an unreachable RPC would. */
const outage = { down: false, refused: 0 };
function unreachable(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });
}
let flaky: Eip1193Provider;

before(async () => {
  chain = await startLocalChain();
  flaky = {
    request(args) {
      if (outage.down) {
        outage.refused++;
        return Promise.reject(unreachable());
      }
      return chain.provider.request(args);
    },
  };
  const deployer = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
  deployment = await deployCloister(deployer, { attester: chain.accounts.attester.address });
  requester = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.requester });
  dir = await mkdtemp(join(tmpdir(), "cloister-watcher-"));
});
after(async () => {
  await chain?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function spec(): TaskSpec {
  const digest = () => toHex(crypto.getRandomValues(new Uint8Array(32)));
  return {
    requester: requester.account.address,
    token: zeroAddress,
    maxPrice: 1n,
    programDigest: digest(),
    inputDigest: digest(),
    envelopeDigest: digest(),
    envelopeCid: "bafy-test",
    candidates: [],
    cpuMillis: 100,
    memoryMb: 16,
    duration: 1,
    teeTypes: anyTeeType,
    category: defaultCategories.XS,
    deadlineMultiple: 1,
    maxAttempts: 1,
  };
}

async function submit(count: number): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) ids.push((await submitTask(requester, deployment.market, { spec: spec() })).taskId);
  return ids;
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("an RPC outage loses no event, handles none twice, and holds the checkpoint until events are handled", async () => {
  const reader = createReaderClient({ endpoint: { provider: flaky }, chain: chain.chain });
  const path = join(dir, "follower.json");
  const handled = new Map<bigint, number>();
  const violations: string[] = [];
  const errors: unknown[] = [];
  const failOnce = new Set<bigint>();
  const cutDuringHandling = new Set<bigint>();
  let crawled = 0;

  const handle = async (task: SubmittedTask) => {
    if (watcher.position >= task.blockNumber) violations.push(`task ${task.taskId} handled after the checkpoint passed block ${task.blockNumber}`);
    if (failOnce.delete(task.taskId)) throw unreachable();
    if (cutDuringHandling.delete(task.taskId)) {
      outage.down = true;
      setTimeout(() => (outage.down = false), 600);
    }
    // The handler's own chain reads go through the same flaky RPC, with retries.
    const record = await withRetry(() => readTask(reader, deployment.market, task.taskId), { what: "readTask", baseMs: 20, maxMs: 200, maxAttempts: 50 });
    assert.equal(record.status, "Open");
    handled.set(task.taskId, (handled.get(task.taskId) ?? 0) + 1);
  };
  const follower = new ChainFollower({ reader, checkpoint: fileCheckpoint(path), pollIntervalMs: 20, maxBackoffMs: 200, onError: (e) => errors.push(e), onCrawled: () => crawled++ });
  const watcher = watchSubmittedTasks(follower, { market: deployment.market, fromBlock: deployment.deployBlock, handle });
  follower.start();
  try {
    const first = await submit(3);
    await until(() => first.every((id) => handled.has(id)), "the first tasks");

    // The RPC goes away; tasks keep arriving on the chain.
    outage.down = true;
    const refusedBefore = outage.refused;
    const blockBefore = watcher.position;
    const second = await submit(3);
    await new Promise((r) => setTimeout(r, 1_200));
    assert.ok(second.every((id) => !handled.has(id)), "nothing could be crawled while the RPC was down");
    assert.equal(watcher.position, blockBefore, "the checkpoint did not move during the outage");
    assert.ok(outage.refused - refusedBefore >= 3, "the crawler kept trying");
    assert.ok(outage.refused - refusedBefore < 40, `the crawler backed off (${outage.refused - refusedBefore} attempts in 1.2 s)`);
    assert.ok(errors.length > 0 && errors.every(isTransientError), "the outage was reported as transient errors");

    // Back up, with two twists in the next range: one handler fails once (so the whole range is
    // crawled again), and another cuts the RPC while it runs.
    const third = await submit(3);
    failOnce.add(third[0]!);
    cutDuringHandling.add(third[1]!);
    outage.down = false;
    const all = [...first, ...second, ...third];
    await until(() => all.every((id) => handled.has(id)), "every task after the outage");
    const latest = await requester.getBlockNumber({ cacheTime: 0 });
    await until(() => watcher.position >= latest && !outage.down, "the checkpoint to reach the head");
    assert.ok(crawled > 0);
    assert.deepEqual(violations, []);
    assert.deepEqual([...handled.values()].filter((n) => n !== 1), [], "each task was handled exactly once");
    assert.equal(handled.size, all.length);
    assert.equal(failOnce.size, 0, "the failing handler ran");
  } finally {
    await follower.stop();
    outage.down = false;
  }

  // A restarted watcher resumes from the saved checkpoint: only new events are handled.
  const seenAfterRestart: bigint[] = [];
  const again = new ChainFollower({ reader, checkpoint: fileCheckpoint(path), pollIntervalMs: 20, onError: (e) => errors.push(e) });
  const restarted = watchSubmittedTasks(again, { market: deployment.market, fromBlock: deployment.deployBlock, handle: async (task) => void seenAfterRestart.push(task.taskId) });
  assert.equal(restarted.position, watcher.position);
  again.start();
  try {
    const [fresh] = await submit(1);
    await until(() => seenAfterRestart.includes(fresh!), "the task submitted after the restart");
    assert.deepEqual(seenAfterRestart, [fresh]);
  } finally {
    await again.stop();
  }
});

/** A watcher from the current head, with new heads pushed over the chain RPC server's WebSocket. */
async function watchWithHeads(intervals: { pollIntervalMs: number; safetyPollIntervalMs?: number }) {
  const server = await startChainRpcServer({ provider: chain.provider });
  const heads = newHeadSource({ wsUrl: server.wsUrl });
  const reader = createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain });
  const handled: bigint[] = [];
  let crawls = 0;
  const follower = new ChainFollower({ reader, ...intervals, heads, onError: () => {}, onCrawled: () => crawls++ });
  watchSubmittedTasks(follower, { market: deployment.market, fromBlock: (await requester.getBlockNumber({ cacheTime: 0 })) + 1n, handle: async (task) => void handled.push(task.taskId) });
  follower.start();
  await until(() => heads.live, "the newHeads subscription");
  // The wake-ups of going live have been crawled; the next crawl is a poll interval away, or a head.
  await new Promise((r) => setTimeout(r, 50));
  return {
    server,
    heads,
    handled,
    crawls: () => crawls,
    async close() {
      await follower.stop();
      await heads.close();
      await server.close();
    },
  };
}

test("a new head wakes the crawler: a task is handled without waiting for the poll interval", { timeout: 15_000 }, async () => {
  const w = await watchWithHeads({ pollIntervalMs: 10_000 });
  try {
    const crawlsBefore = w.crawls();
    const [id] = await submit(1);
    await until(() => w.handled.includes(id!), "the task, well before the 10 s poll interval", 3_000);
    assert.ok(w.crawls() > crawlsBefore);
    // Each task's own block wakes the crawler again.
    const more = await submit(2);
    await until(() => more.every((m) => w.handled.includes(m)), "two more tasks", 3_000);
    assert.deepEqual(w.handled, [id, ...more]);
  } finally {
    await w.close();
  }
});

test("when the WebSocket drops, the crawler falls back to polling at its own interval", { timeout: 15_000 }, async () => {
  const w = await watchWithHeads({ pollIntervalMs: 50, safetyPollIntervalMs: 60_000 });
  try {
    await w.server.close();
    await until(() => !w.heads.live, "the head source to notice the drop");
    const [id] = await submit(1);
    await until(() => w.handled.includes(id!), "the task, by polling (the safety net would wait 60 s)", 3_000);
  } finally {
    await w.close();
  }
});
