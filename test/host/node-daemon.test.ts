/**
 * A real node daemon (its enclave in its own process, the in-process chain,
 * the embedded IPFS store): a task this node accepted before a restart is
 * resumed and completed once, and /healthz and /metrics report the node,
 * down to the enclave process dying.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseEther, zeroAddress } from "viem";
import { AttestationService } from "../../src/cas/service.ts";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { postOffer, readOffer } from "../../src/chain/actions/offers.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { NodeDaemon } from "../../src/host/node-daemon.ts";
import { prepareTask, publishTask, submitPublished } from "../../src/sdk/submit.ts";
import { parsePrometheusText } from "./prometheus-parse.ts";

let network: EmbeddedNetwork;
const daemons: NodeDaemon[] = [];

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 0 });
});
after(async () => {
  for (const daemon of daemons) await daemon.stop().catch(() => {});
  await network?.close();
});

function nodeParts() {
  const { chain, deployment, store, manifest, dataDir } = network;
  const writer = (account: typeof chain.accounts.deployer) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });
  const cas = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store, manifest });
  const enclave = () => startEnclave({ dataDir: join(dataDir, "node", "enclave"), attestation: { provider: "sim", pkiDir: join(dataDir, "sim-tee") } });
  return { operator: writer(chain.accounts.operators[0]!), cas, enclave };
}

async function startDaemon(enclave: EnclaveClient, events: HostEvent[], http?: { port: number }): Promise<NodeDaemon> {
  const { operator, cas } = nodeParts();
  const daemon = new NodeDaemon({
    writer: operator,
    deployment: network.deployment,
    store: network.store,
    enclave,
    attestationService: cas,
    dataDir: join(network.dataDir, "node"),
    pollIntervalMs: 25,
    onEvent: (e) => events.push(e),
    ...(http ? { http } : {}),
  });
  daemons.push(daemon);
  await daemon.start();
  return daemon;
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

test("a task accepted before a restart is resumed and completed once; health and metrics follow the node", async () => {
  const { operator } = nodeParts();
  const { deployment, store, requester } = network;

  // First run: the node registers its enclave, then stops (its sealed key stays in the enclave's data dir).
  const firstEvents: HostEvent[] = [];
  const first = await startDaemon(await nodeParts().enclave(), firstEvents);
  await first.stop();
  const signer = first.signer;
  // Until the daemon posts its own offer on start, post one for it: accept needs an offer in the task's token.
  if (!(await readOffer(operator, deployment.market, signer, zeroAddress))) {
    await postOffer(operator, deployment.market, { enclave: signer, token: zeroAddress, price: 1n, cpuMillis: 4_000, memoryMb: 4_096, maxDuration: 3_600 });
  }

  // While it is down, a task for it is submitted and accepted for its enclave, as if the node had
  // crashed right after its accept transaction.
  const listing = await network.client.listEnclaves();
  const candidate = listing.verified.find((e) => e.signer.toLowerCase() === signer.toLowerCase());
  assert.ok(candidate, `the node's enclave must verify; rejected: ${JSON.stringify(listing.rejected)}`);
  const ctx = { writer: requester, market: deployment.market, chainId: BigInt(deployment.chainId), store };
  const prepared = await prepareTask(ctx, { program: new TextEncoder().encode("export default function (input) { return input; }"), input: new TextEncoder().encode("resume me"), candidates: [candidate] });
  const task = await submitPublished(ctx, await publishTask(ctx, prepared, { maxPrice: parseEther("0.01") }));
  await acceptTask(operator, deployment.market, { taskId: task.taskId, spec: task.spec, enclave: signer });

  // Restart with a new enclave process on the same sealed state.
  const events: HostEvent[] = [];
  const enclave = await nodeParts().enclave();
  assert.equal(enclave.identity.signer, signer, "the enclave unsealed the same key");
  const daemon = await startDaemon(enclave, events, { port: 0 });
  const id = task.taskId.toString();
  await until(() => events.find((e) => (e.type === "task-completed" || e.type === "task-failed") && e.taskId === id), "the resumed task to finish");
  assert.deepEqual(events.filter((e) => "taskId" in e && e.taskId === id).map((e) => e.type), ["task-seen", "task-executed", "task-completed"]);
  assert.equal((await readTask(requester, deployment.market, task.taskId)).status, "Completed");

  // Health: up, with the enclave and the crawler's progress.
  const url = daemon.httpUrl!;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  // The crawler checkpoints on its next poll after the completion; wait for it, within bounds.
  const completedAt = await requester.getBlockNumber({ cacheTime: 0 });
  let healthy = await get(`${url}/healthz`);
  for (const deadline = Date.now() + 5_000; BigInt(JSON.parse(healthy.body).checkpointBlock) < completedAt && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 50));
    healthy = await get(`${url}/healthz`);
  }
  assert.equal(healthy.status, 200, healthy.body);
  const health = JSON.parse(healthy.body);
  assert.equal(health.status, "ok");
  assert.equal(health.enclave.signer, signer);
  assert.equal(health.enclave.simulated, true);
  assert.ok(BigInt(health.checkpointBlock) >= completedAt, `checkpoint ${health.checkpointBlock} reached the completion's block ${completedAt}`);
  assert.ok(health.lastCrawlAgeMs >= 0 && health.lastCrawlAgeMs < 5_000);

  const metrics = await get(`${url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.equal(metrics.type, "text/plain; version=0.0.4; charset=utf-8");
  const parsed = parsePrometheusText(metrics.body);
  assert.equal(parsed.value("tasks_seen_total"), 1);
  assert.equal(parsed.value("tasks_accepted_total"), 0, "the resumed task was not accepted again");
  assert.equal(parsed.value("tasks_completed_total"), 1);
  assert.equal(parsed.value("task_duration_seconds_count"), 1);
  assert.equal(parsed.value("tasks_in_flight"), 0);
  assert.equal(parsed.value("enclave_up"), 1);
  assert.ok(parsed.value("chain_block_checkpoint")! > 0);

  assert.equal((await get(`${url}/nope`)).status, 404);
  assert.equal((await fetch(`${url}/healthz`, { method: "POST" })).status, 405);

  // The enclave process dies: the node reports itself unavailable.
  process.kill(enclave.pid, "SIGKILL");
  await enclave.exited;
  const down = await get(`${url}/healthz`);
  assert.equal(down.status, 503);
  const downHealth = JSON.parse(down.body);
  assert.equal(downHealth.status, "unavailable");
  assert.match(downHealth.reason, /enclave process exited/);
  assert.equal(downHealth.enclave.up, false);
  assert.equal(parsePrometheusText((await get(`${url}/metrics`)).body).value("enclave_up"), 0);

  await daemon.stop();
  await assert.rejects(fetch(`${url}/healthz`), "the server is closed with the daemon");
  assert.equal(firstEvents.filter((e) => e.type === "task-seen").length, 0);
});
