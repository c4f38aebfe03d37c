/**
 * Faults on the real multi-process devnet (3 nodes, each with its enclave in
 * its own process): a node killed with SIGKILL in the middle of a task, the
 * same node restarted, the chain RPC unreachable for a few seconds, and the
 * IPFS node restarted. The tests share one network and run in order; they
 * use fixed, generous timeouts (CI runs them on small machines).
 * FAULTS_DEBUG=1 prints every node's host events at the end.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { getBalance, getBlockNumber, getContractEvents } from "viem/actions";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { setCategory, readTaskDeposit } from "../../src/chain/actions/market-config.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { chainDefinition, createWriterClient, type WriterClient } from "../../src/chain/clients.ts";
import { devPrivateKeys } from "../../src/chain/dev-accounts.ts";
import { startMultiProcessDevnet, type MultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { defaultNodeOffer } from "../../src/host/node-daemon.ts";
import { awaitCompletion, verifyAndDecrypt } from "../../src/sdk/await-result.ts";
import { CloisterClient, type RunTaskOptions } from "../../src/sdk/client.ts";
import { prepareTask, publishTask, submitPublished } from "../../src/sdk/submit.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import type { BlobStore } from "../../src/storage/blob-store.ts";
import { isAlive, receivedBy, sleep, taskEvents, until } from "./helpers.ts";

/** Spins for the number of milliseconds in its input: long enough to kill its node in the middle. */
const slowProgram = new TextEncoder().encode(`export default function (input) {
  const ms = Number(new TextDecoder().decode(input));
  const until = Date.now() + ms;
  let spins = 0;
  while (Date.now() < until) spins++;
  return "slept " + ms + " ms";
}`);

/** A category the admin defines for these tests: an attempt has this many seconds. */
const SHORT_CATEGORY = 7;
const SHORT_CATEGORY_SECONDS = 10;
const price = defaultNodeOffer.price;
const maxPrice = 3n * price;

let dir: string;
let devnet: MultiProcessDevnet;
let store: BlobStore;
/** The requester's client over HTTP, and another over the in-process chain (for while the RPC server is down). */
let overHttp: { writer: WriterClient; client: CloisterClient };
let inProcess: { writer: WriterClient; client: CloisterClient };
const hostEvents: { node: number; at: number; event: HostEvent }[] = [];
const allPids = new Set<number>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-faults-"));
  devnet = await startMultiProcessDevnet({
    dataDir: dir,
    nodes: 3,
    onNodeMessage: (node, message) => {
      if (message.event === "host") hostEvents.push({ node, at: Date.now(), event: message.host });
    },
  });
  for (const n of devnet.nodes) allPids.add(n.pid).add(n.enclavePid);
  const chain = chainDefinition(devnet.chainId, devnet.rpcUrl);
  const requester = privateKeyToAccount(devnet.requesterKey);
  store = openKuboStore(devnet.ipfsUrl);
  const client = (writer: WriterClient) => ({ writer, client: new CloisterClient({ writer, deployment: devnet.deployment, store, manifest: devnet.manifest }) });
  overHttp = client(createWriterClient({ endpoint: { rpcUrl: devnet.rpcUrl }, chain, account: requester, pollingInterval: 50 }));
  inProcess = client(createWriterClient({ endpoint: { provider: devnet.chainProvider }, chain, account: requester, pollingInterval: 50 }));
  const admin = createWriterClient({ endpoint: { provider: devnet.chainProvider }, chain, account: privateKeyToAccount(devPrivateKeys(0).deployer) });
  await setCategory(admin, devnet.deployment.market, SHORT_CATEGORY, SHORT_CATEGORY_SECONDS);
});

after(async () => {
  if (process.env.FAULTS_DEBUG) for (const h of hostEvents) if (h.event.type !== "task-seen") console.log(h.node, new Date(h.at).toISOString(), JSON.stringify(h.event));
  await store?.close().catch(() => {});
  await devnet?.close();
  for (const n of devnet?.nodes ?? []) allPids.add(n.pid).add(n.enclavePid);
  const deadline = Date.now() + 10_000;
  while ([...allPids].some(isAlive) && Date.now() < deadline) await sleep(50);
  if (dir) await rm(dir, { recursive: true, force: true });
  assert.deepEqual([...allPids].filter(isAlive), [], "no node or enclave process outlives the devnet");
});

function runSlowTask(client: CloisterClient, ms: number, options: Partial<RunTaskOptions> = {}) {
  let submitted: (taskId: bigint) => void;
  const taskId = new Promise<bigint>((resolve) => (submitted = resolve));
  const result = client.runTask({
    program: slowProgram,
    input: new TextEncoder().encode(String(ms)),
    maxPrice,
    limits: { timeoutMs: 20_000 },
    timeoutMs: 90_000,
    onProgress: (p) => {
      if (p.step === "submitted") submitted(p.task.taskId);
    },
    ...options,
  });
  // Surfaced by whoever awaits it; until then a rejection must not be unhandled.
  result.catch(() => {});
  return { taskId, result };
}

const market = () => devnet.deployment.market;
const reader = () => inProcess.writer;
const nodeOf = (enclave: Address) => devnet.nodes.findIndex((n) => n.signer.toLowerCase() === enclave.toLowerCase());
const snapshot = async (address: Address, block: bigint) => ({ block, balance: await getBalance(reader(), { address, blockNumber: block }) });

/** State carried from the kill test to the restart test. */
let killed: { index: number; operator: Address; taskId: bigint; startBlock: bigint; marketBefore: bigint; before: { block: bigint; balance: bigint } } | undefined;

test("a node killed with SIGKILL while it runs a task: after the deadline another candidate completes it and the deposit goes to the requester", async () => {
  const startBlock = await getBlockNumber(reader(), { cacheTime: 0 });
  const operators = devnet.nodes.map((n) => n.operator as Address);
  const requester = overHttp.writer.account.address;
  const before = Object.fromEntries(await Promise.all([requester, ...operators].map(async (a) => [a.toLowerCase(), await snapshot(a, startBlock)] as const)));
  const marketBefore = await getBalance(reader(), { address: market(), blockNumber: startBlock });
  const deposit = await readTaskDeposit(reader(), market());

  const run = runSlowTask(overHttp.client, 2_500, { category: SHORT_CATEGORY, deadlineMultiple: 1, maxAttempts: 3 });
  const taskId = await run.taskId;
  const [first] = await until(async () => {
    const logs = await getContractEvents(reader(), { address: market(), abi: taskMarketAbi, eventName: "TaskAccepted", args: { taskId }, fromBlock: startBlock, strict: true });
    return logs.length > 0 ? logs : undefined;
  }, "a node to accept the task", 30_000, 20);
  const index = nodeOf(first!.args.enclave);
  assert.ok(index >= 0, "the accepting enclave is one of the devnet's nodes");
  const victim = devnet.nodes[index]!;
  await devnet.killNode(index);
  assert.ok(!isAlive(victim.pid), "the node process is gone");
  assert.ok(!isAlive(victim.enclavePid), "its enclave process is gone");
  assert.equal((await readTask(reader(), market(), taskId)).status, "Accepted", "the task is still held by the killed node");

  const result = await run.result;
  assert.equal(new TextDecoder().decode(result.output), "slept 2500 ms");
  assert.notEqual(result.enclave.signer.toLowerCase(), victim.signer.toLowerCase(), "another enclave completed it");
  assert.ok(devnet.nodes.some((n) => n.signer.toLowerCase() === result.enclave.signer.toLowerCase()));

  const events = await taskEvents(reader(), market(), taskId, startBlock);
  assert.deepEqual(events.accepted.map((e) => e.args.attempt), [1, 2], "accepted twice: the killed node, then another");
  assert.equal(events.reopened.length, 1);
  const reopen = events.reopened[0]!.args;
  assert.equal(reopen.enclave.toLowerCase(), victim.signer.toLowerCase());
  assert.equal(reopen.forfeitedDeposit, deposit);
  assert.ok(events.reopened[0]!.blockNumber > first!.blockNumber);
  assert.ok(
    hostEvents.some((h) => h.node !== index && h.event.type === "task-reopened" && h.event.taskId === taskId.toString() && h.event.outcome === "reopened"),
    "a surviving node's reopen keeper reopened it (the requester did nothing)",
  );
  assert.equal(events.completed.length, 1);
  const completer = events.completed[0]!.args;
  assert.equal(completer.price, price);

  // The money: the requester got back maxPrice - price plus the killed node's deposit; the completing
  // operator got the price and its own deposit back; the killed operator got nothing back.
  const end = events.completed[0]!.blockNumber;
  assert.equal(await receivedBy(reader(), requester, before[requester.toLowerCase()]!, end), maxPrice - price + deposit);
  assert.equal(await receivedBy(reader(), completer.operator, before[completer.operator.toLowerCase()]!, end), price + deposit);
  assert.equal(await receivedBy(reader(), victim.operator as Address, before[victim.operator.toLowerCase()]!, end), 0n);
  assert.equal(await getBalance(reader(), { address: market(), blockNumber: end }), marketBefore, "the market holds nothing for the task");

  killed = { index, operator: victim.operator as Address, taskId, startBlock, marketBefore, before: before[victim.operator.toLowerCase()]! };
});

test("the killed node restarted on its data dir does not run the task again, and nothing is paid twice", async () => {
  assert.ok(killed, "runs after the kill test");
  const { index, taskId, startBlock } = killed;
  const restartedAt = Date.now();
  const node = await devnet.restartNode(index);
  allPids.add(node.pid).add(node.enclavePid);
  assert.ok(isAlive(node.pid) && isAlive(node.enclavePid));

  // It crawls from its checkpoint, which is before the task's submission: it sees the task and skips it.
  const latest = await getBlockNumber(reader(), { cacheTime: 0 });
  await until(async () => {
    const health = (await (await fetch(`${node.httpUrl}/healthz`)).json()) as { checkpointBlock: string | null };
    return health.checkpointBlock !== null && BigInt(health.checkpointBlock) >= latest ? true : undefined;
  }, "the restarted node to catch up with the chain", 30_000);
  const mine = hostEvents.filter((h) => h.node === index && h.at >= restartedAt && "taskId" in h.event && h.event.taskId === taskId.toString()).map((h) => h.event.type);
  assert.ok(mine.includes("task-seen"), "the restarted node handled the task's events again");
  assert.ok(mine.includes("task-skipped"));
  assert.ok(!mine.includes("task-accepted") && !mine.includes("task-executed") && !mine.includes("task-completed"), `it did not run the task again (events: ${mine.join(", ")})`);

  const events = await taskEvents(reader(), market(), taskId, startBlock);
  assert.equal(events.completed.length, 1, "completed exactly once");
  assert.equal(events.accepted.length, 2);
  assert.equal(events.refunded.length, 0);
  assert.equal((await readTask(reader(), market(), taskId)).status, "Completed");
  const now = await getBlockNumber(reader(), { cacheTime: 0 });
  assert.equal(await getBalance(reader(), { address: market(), blockNumber: now }), killed.marketBefore, "the market still holds nothing for the task");
  // Over the whole story (registration and offer of the restart included) the killed operator received nothing.
  assert.equal(await receivedBy(reader(), killed.operator, killed.before, now), 0n);
  const deferred = await getContractEvents(reader(), { address: market(), abi: taskMarketAbi, eventName: "PaymentDeferred", fromBlock: startBlock });
  assert.equal(deferred.length, 0, "no payment was deferred to a later withdrawal");
});

test("the chain RPC unreachable for a few seconds: the nodes recover and every task completes exactly once", async () => {
  const startBlock = await getBlockNumber(reader(), { cacheTime: 0 });
  // One task in flight when the RPC goes away: its node must finish it through the outage.
  // The requester uses the in-process chain throughout: what is tested is the nodes' recovery.
  const running = runSlowTask(inProcess.client, 1_500);
  const runningId = await running.taskId;
  await until(async () => ((await readTask(reader(), market(), runningId)).status === "Accepted" ? true : undefined), "the first task to be accepted", 30_000, 20);

  const outageStart = Date.now();
  await devnet.stopChainRpc();
  // Submitted while the nodes cannot see the chain: straight to the in-process chain.
  const during = [runSlowTask(inProcess.client, 100), runSlowTask(inProcess.client, 200)];
  const duringIds = await Promise.all(during.map((t) => t.taskId));
  await sleep(4_000);
  await devnet.startChainRpc();

  const results = await Promise.all([running.result, ...during.map((t) => t.result)]);
  assert.deepEqual(results.map((r) => new TextDecoder().decode(r.output)), ["slept 1500 ms", "slept 100 ms", "slept 200 ms"]);
  for (const taskId of [runningId, ...duringIds]) {
    const events = await taskEvents(reader(), market(), taskId, startBlock);
    assert.equal(events.completed.length, 1, `task ${taskId} completed exactly once`);
    assert.equal(events.accepted.length, 1, `task ${taskId} accepted exactly once`);
    assert.equal(events.reopened.length, 0);
  }
  const errors = hostEvents.filter((h) => h.at >= outageStart && h.event.type === "watcher-error");
  assert.ok(errors.length > 0, "the nodes noticed the outage (watcher-error)");
  assert.ok(!hostEvents.some((h) => h.at >= outageStart && h.event.type === "task-failed"), "no task failed on a node");
});

test("the IPFS node restarted: a task submitted around the restart completes, and blobs stored before are still there", async () => {
  const earlier = new TextEncoder().encode(`stored before the restart ${Date.now()}`);
  const earlierCid = await store.put(earlier);

  // Program, input and envelope go to IPFS, then IPFS goes down, then the task is submitted:
  // its node must wait for IPFS to come back to fetch them.
  const { writer, client } = overHttp;
  const deployment = devnet.deployment;
  const ctx = { writer, market: deployment.market, chainId: BigInt(deployment.chainId), store };
  const { verified } = await client.listEnclaves();
  const prepared = await prepareTask(ctx, { program: slowProgram, input: new TextEncoder().encode("300"), candidates: verified });
  const published = await publishTask(ctx, prepared, { maxPrice });
  const restartStart = Date.now();
  await devnet.stopIpfs();
  const task = await submitPublished(ctx, published);
  await sleep(3_000);
  await devnet.startIpfs();

  const awaitCtx = { reader: writer, market: deployment.market, registry: deployment.registry, store };
  const completion = await awaitCompletion(awaitCtx, task, 60_000);
  const result = await verifyAndDecrypt(awaitCtx, task, verified, completion);
  assert.equal(new TextDecoder().decode(result.output), "slept 300 ms");
  const events = await taskEvents(reader(), market(), task.taskId, task.submitBlock);
  assert.equal(events.completed.length, 1);
  assert.equal(events.accepted.length, 1);
  assert.ok(!hostEvents.some((h) => h.at >= restartStart && h.event.type === "task-failed"), "no node gave up on the task");

  assert.deepEqual(await store.get(earlierCid), earlier, "a blob written before the restart is still readable");
  assert.equal(await store.has(earlierCid), true, "and still pinned");
});
