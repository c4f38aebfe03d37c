/**
 * A node's registration over days of chain time: the in-process chain's clock is pushed 72 hours ahead in
 * 4-hour steps while tasks keep flowing, and the node re-attests before each registration expires, so every
 * task completes and the enclave stays active throughout. Then the attestation service goes down at the
 * renewal point (the node retries with backoff, still registered, until it is back), then past the expiry
 * (the node is expired and withdraws its offer until it renews), and last the enclave
 * is revoked (the node sees the registry's event, withdraws its offer, refuses a task that names it, and
 * says so in /healthz).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseEther, zeroAddress } from "viem";
import { getBlock } from "viem/actions";
import { casHttpClient } from "../../src/cas/http-client.ts";
import { startCasHttpServer, type CasHttpServer } from "../../src/cas/http-server.ts";
import { AttestationService } from "../../src/cas/service.ts";
import { readEnclave } from "../../src/chain/actions/read-enclave.ts";
import { readOffer } from "../../src/chain/actions/offers.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { startEnclave } from "../../src/enclave/client.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { NodeDaemon } from "../../src/host/node-daemon.ts";
import { prepareTask, publishTask, submitPublished } from "../../src/sdk/submit.ts";
import { parsePrometheusText } from "../host/prometheus-parse.ts";
import { until } from "./helpers.ts";

const hour = 3600;
let network: EmbeddedNetwork;
let daemon: NodeDaemon;
let cas: CasHttpServer;
let service: AttestationService;
const events: HostEvent[] = [];

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 0 });
  const { chain, deployment, store, manifest, dataDir } = network;
  const writer = (account: typeof chain.accounts.deployer) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });
  service = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store, manifest });
  cas = await startCasHttpServer({ service });
  const enclave = await startEnclave({ dataDir: join(dataDir, "node", "enclave"), attestation: { provider: "sim", pkiDir: join(dataDir, "sim-tee") } });
  daemon = new NodeDaemon({
    writer: writer(chain.accounts.operators[0]!),
    deployment,
    store,
    enclave,
    attestationService: casHttpClient(cas.url),
    dataDir: join(dataDir, "node"),
    pollIntervalMs: 25,
    registration: { pollIntervalMs: 50, retryBaseMs: 50, retryMaxMs: 400 },
    http: { port: 0 },
    onEvent: (e) => events.push(e),
  });
  await daemon.start();
});

after(async () => {
  await daemon?.stop().catch(() => {});
  await cas?.close();
  await network?.close();
});

async function chainNow(): Promise<bigint> {
  return (await getBlock(network.requester, { blockTag: "latest" })).timestamp;
}

async function advance(seconds: number): Promise<void> {
  await network.chain.provider.request({ method: "evm_increaseTime", params: [seconds] });
  await network.chain.provider.request({ method: "evm_mine", params: [] });
}

async function healthz() {
  const res = await fetch(`${daemon.httpUrl}/healthz`);
  return { status: res.status, body: JSON.parse(await res.text()) };
}

/** Waits until the node has seen the chain's latest time and holds a registration it does not need to renew yet. */
async function settled(): Promise<void> {
  const now = await chainNow();
  await until(() => {
    const r = daemon.health().registration;
    return r.state === "registered" && BigInt(r.chainTime ?? "0") >= now ? r : undefined;
  }, `the node to be registered at chain time ${now} (now ${JSON.stringify(daemon.health().registration)})`, 20_000, 20);
}

test("72 hours of chain time in 4-hour steps: the node renews its registration and every task completes", async () => {
  const signer = daemon.signer;
  const echo = new TextEncoder().encode("export default function (input) { return input; }");
  const expiries = new Set<bigint>();
  for (let step = 1; step <= 18; step++) {
    await advance(4 * hour);
    await settled();
    const record = await readEnclave(network.requester, network.deployment.registry, signer);
    assert.ok(record.active, `step ${step}: the enclave is active at chain time ${await chainNow()} (expiry ${record.expiry})`);
    expiries.add(record.expiry);
    const input = new TextEncoder().encode(`step ${step}`);
    const result = await network.client.runTask({ program: echo, input, maxPrice: parseEther("0.01"), timeoutMs: 30_000 });
    assert.deepEqual(result.output, input, `step ${step}: the task completed with its output`);
    const health = await healthz();
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(health.body.registration.state, "registered");
    assert.ok(BigInt(health.body.registration.expiry) === (await readEnclave(network.requester, network.deployment.registry, signer)).expiry, "healthz reports the chain's expiry");
  }
  // 72 h with a 24 h lifetime renewed at 2/3: the start's registration and at least four renewals.
  assert.ok(expiries.size >= 4, `the registration was renewed (expiries seen: ${[...expiries].join(", ")})`);
  assert.equal(events.filter((e) => e.type === "task-failed").length, 0, JSON.stringify(events.filter((e) => e.type === "task-failed")));
  const metrics = parsePrometheusText(await (await fetch(`${daemon.httpUrl}/metrics`)).text());
  assert.equal(metrics.value("registration_state", { state: "registered" }), 1);
  assert.equal(metrics.value("registration_state", { state: "expired" }), 0);
  assert.ok(metrics.value("registration_expiry_seconds")! > 8 * hour, "seconds to expiry are past the renewal point");
});

test("the attestation service is down at the renewal point: the node retries with backoff and renews when it is back", async () => {
  await settled();
  const before = (await readEnclave(network.requester, network.deployment.registry, daemon.signer)).expiry;
  const port = cas.port;
  await cas.close();
  // Past the renewal point (2/3 of 24 h), well before expiry.
  const renewAt = before - BigInt(8 * hour);
  await advance(Number(renewAt - (await chainNow())) + 60);
  const renewing = await until(() => {
    const r = daemon.health().registration;
    return r.state === "renewing" && r.failures >= 2 ? r : undefined;
  }, "the node to fail its renewal twice", 20_000, 20);
  assert.match(renewing.lastError ?? "", /cannot reach the attestation service/);
  const health = await healthz();
  assert.equal(health.status, 200, "still registered while the renewal is retried");
  assert.equal(health.body.registration.state, "renewing");
  cas = await startCasHttpServer({ service, port });
  await settled();
  const after = (await readEnclave(network.requester, network.deployment.registry, daemon.signer)).expiry;
  assert.ok(after > before, `renewed: expiry ${before} → ${after}`);
  const result = await network.client.runTask({ program: new TextEncoder().encode("export default function (input) { return input; }"), input: new Uint8Array([1]), maxPrice: parseEther("0.01") });
  assert.deepEqual(result.output, new Uint8Array([1]));
});

test("the service stays down past the expiry: the node is expired (503, offer withdrawn), and back to work once it renews", async () => {
  const { deployment } = network;
  await settled();
  const expiry = (await readEnclave(network.requester, deployment.registry, daemon.signer)).expiry;
  const port = cas.port;
  await cas.close();
  await advance(Number(expiry - (await chainNow())) + 60);
  await until(() => (daemon.health().registration.state === "expired" ? true : undefined), "the node to see its registration expire", 20_000, 20);
  const health = await healthz();
  assert.equal(health.status, 503);
  assert.match(health.body.reason, /registration expired/);
  assert.ok(health.body.registration.secondsToExpiry <= 0);
  await until(async () => ((await readOffer(network.requester, deployment.market, daemon.signer, zeroAddress)) === undefined ? true : undefined), "the offer to be withdrawn", 10_000, 50);
  const metrics = parsePrometheusText(await (await fetch(`${daemon.httpUrl}/metrics`)).text());
  assert.equal(metrics.value("registration_state", { state: "expired" }), 1);
  assert.ok(metrics.value("registration_expiry_seconds")! <= 0);

  cas = await startCasHttpServer({ service, port });
  await settled();
  await until(async () => ((await readOffer(network.requester, deployment.market, daemon.signer, zeroAddress)) ? true : undefined), "the offer to be posted again", 10_000, 50);
  assert.equal((await healthz()).status, 200);
  const result = await network.client.runTask({ program: new TextEncoder().encode("export default function (input) { return input; }"), input: new Uint8Array([3]), maxPrice: parseEther("0.01") });
  assert.deepEqual(result.output, new Uint8Array([3]));
});

test("a revoked enclave: the node sees the registry's event, withdraws its offer, accepts nothing and is unavailable", async () => {
  const { chain, deployment } = network;
  const attester = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.attester });
  assert.ok(await readOffer(network.requester, deployment.market, daemon.signer, zeroAddress), "the node has an offer before");
  const candidate = (await network.client.listEnclaves()).verified.find((e) => e.signer === daemon.signer);
  assert.ok(candidate, "the node's enclave is listed before its revocation");
  await revokeEnclave(attester, deployment.registry, daemon.signer);
  await until(() => (daemon.health().registration.state === "revoked" ? true : undefined), "the node to see the revocation", 10_000, 20);
  await until(async () => ((await readOffer(network.requester, deployment.market, daemon.signer, zeroAddress)) === undefined ? true : undefined), "the offer to be withdrawn", 10_000, 50);
  const health = await healthz();
  assert.equal(health.status, 503);
  assert.equal(health.body.registration.state, "revoked");
  assert.match(health.body.reason, /revoked/);
  const metrics = parsePrometheusText(await (await fetch(`${daemon.httpUrl}/metrics`)).text());
  assert.equal(metrics.value("registration_state", { state: "revoked" }), 1);
  assert.equal(metrics.value("registration_state", { state: "registered" }), 0);
  assert.ok(events.some((e) => e.type === "registration-changed" && e.state === "revoked"));

  // A task naming it (prepared from the listing before the revocation) is refused before any accept is sent.
  const ctx = { writer: network.requester, market: deployment.market, chainId: BigInt(deployment.chainId), store: network.store };
  const prepared = await prepareTask(ctx, { program: new TextEncoder().encode("export default function (input) { return input; }"), input: new Uint8Array([2]), candidates: [candidate] });
  const task = await submitPublished(ctx, await publishTask(ctx, prepared, { maxPrice: parseEther("0.01") }));
  const skipped = await until(() => events.find((e) => e.type === "task-skipped" && e.taskId === task.taskId.toString()), "the node to refuse the task", 10_000, 20);
  assert.match((skipped as { reason: string }).reason, /revoked/);
  assert.equal((await readTask(network.requester, deployment.market, task.taskId)).status, "Open", "no accept was sent");
});
