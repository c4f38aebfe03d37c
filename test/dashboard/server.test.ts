/**
 * The dashboard's server without a browser: what it serves (the bundle with a
 * Content-Security-Policy that names only the network's endpoints, the page's
 * configuration), what it refuses (writes, paths outside the bundle, a bad
 * task id or run reference, verification without a policy or of a contract
 * the deployment does not name), the node relay, and reading
 * deployment and network files, the optional contracts included.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { localNetworkManifest } from "../../src/devnet/network-policy.ts";
import { DashboardDeploymentError, parseDashboardDeployment, readDashboardDeployment } from "../../src/devnet/dashboard-deployment.ts";
import { parsePrometheus, startDashboardServer, type DashboardServer } from "../../src/devnet/dashboard-server.ts";

const registry = "0x1aa547ca6312e64dcd1a1b195efa529a9afd32b6";
const market = "0x50a667f0f78a8fb82b03dc346c8aad783b3f13a4";
const vault = "0x00000000000000000000000000000000000000cc";
let dir: string;
let server: DashboardServer;
let verifying: DashboardServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-dashboard-server-"));
  const web = join(dir, "web");
  await mkdir(join(web, "assets"), { recursive: true });
  await writeFile(join(web, "index.html"), "<!doctype html><title>test bundle</title>");
  await writeFile(join(web, "assets", "app.js"), "console.log('app')");
  await writeFile(join(dir, "secret.txt"), "outside the bundle");
  const common = { rpcUrl: "http://127.0.0.1:18545", wsUrl: "ws://127.0.0.1:18545", ipfsUrl: "http://127.0.0.1:18546", webRoot: web };
  server = await startDashboardServer({ ...common, deployment: { chainId: 31337, registry, market, deployBlock: "2", vault }, deploymentSource: "test", nodeUrls: ["http://127.0.0.1:9"] });
  verifying = await startDashboardServer({ ...common, deployment: { chainId: 31337, registry, market, deployBlock: "2" }, manifest: (await localNetworkManifest(join(dir, "sim"))).manifest });
});
after(async () => {
  await server?.close();
  await verifying?.close();
  await rm(dir, { recursive: true, force: true });
});

test("it serves the bundle with a Content-Security-Policy that allows only itself, the chain and IPFS", async () => {
  const res = await fetch(server.url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await res.text(), /test bundle/);
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self' http:\/\/127\.0\.0\.1:18545 ws:\/\/127\.0\.0\.1:18545 http:\/\/127\.0\.0\.1:18546(;|$)/);
  assert.doesNotMatch(csp, /unsafe/);
  const asset = await fetch(`${server.url}assets/app.js`);
  assert.match(asset.headers.get("content-type") ?? "", /javascript/);
  assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
  assert.deepEqual(server.origins, [server.url.slice(0, -1), `http://localhost:${server.port}`]);
});

test("it refuses writes and paths outside the bundle", async () => {
  assert.equal((await fetch(server.url, { method: "POST", body: "x" })).status, 405);
  for (const path of ["%2e%2e/secret.txt", "..%2fsecret.txt", "assets/..%2f..%2fsecret.txt", "no-such-file.js"]) {
    const res = await fetch(`${server.url}${path}`);
    assert.equal(res.status, 404, path);
    assert.doesNotMatch(await res.text(), /outside the bundle/);
  }
});

test("config.json gives the page the endpoints, the deployment with its optional contracts, and no policy when none was given", async () => {
  const config = (await (await fetch(`${server.url}config.json`)).json()) as Record<string, unknown>;
  assert.equal(config.rpcUrl, "http://127.0.0.1:18545");
  assert.equal(config.wsUrl, "ws://127.0.0.1:18545");
  assert.deepEqual(config.deployment, { chainId: 31337, registry, market, deployBlock: "2", vault });
  assert.equal(config.policy, null);
  assert.equal(config.nodeCount, 1);
  const enclaves = await fetch(`${server.url}api/enclaves`);
  assert.equal(enclaves.status, 404);
  assert.match(((await enclaves.json()) as { error: string }).error, /verifies nothing/);
  const verifyingConfig = (await (await fetch(`${verifying.url}config.json`)).json()) as { policy: { name: string; digest: string; allowSimulation: boolean } };
  assert.equal(verifyingConfig.policy.name, "cloister-devnet");
  assert.match(verifyingConfig.policy.digest, /^0x[0-9a-f]{64}$/);
  assert.equal(verifyingConfig.policy.allowSimulation, true);
});

test("the API refuses a task id that is not one, and reports an unreachable node instead of failing", async () => {
  for (const id of ["abc", "-1", "0x", "1e5"]) assert.equal((await fetch(`${verifying.url}api/provenance?task=${id}`)).status, 400, id);
  assert.equal((await fetch(`${server.url}api/nope`)).status, 404);
  const nodes = (await (await fetch(`${server.url}api/nodes`)).json()) as { nodes: { index: number; ok: boolean; error?: string }[] };
  assert.equal(nodes.nodes.length, 1);
  assert.equal(nodes.nodes[0]!.ok, false);
  assert.match(nodes.nodes[0]!.error ?? "", /http:\/\/127\.0\.0\.1:9 does not answer/);
});

test("the provenance API names one job, refuses a bad id or run number with its reason, and a run kind whose contract is not deployed", async () => {
  const answer = async (query: string) => {
    const res = await fetch(`${verifying.url}api/provenance?${query}`);
    return { status: res.status, error: ((await res.json()) as { error: string }).error };
  };
  for (const query of ["", "task=1&pipeline=2&run=1", "run=1", "use=1"]) {
    const a = await answer(query);
    assert.equal(a.status, 400, query);
    assert.match(a.error, /name one job: task=<id>, pipeline=<id>&run=<n>, collaboration=<id>&run=<n> or grant=<id>&use=<n>/, query);
  }
  assert.deepEqual(await answer("pipeline=abc&run=1"), { status: 400, error: "'abc' is not a pipeline id (a decimal or 0x number)" });
  assert.deepEqual(await answer("collaboration=0x&run=1"), { status: 400, error: "'0x' is not a collaboration id (a decimal or 0x number)" });
  assert.deepEqual(await answer("pipeline=1"), { status: 400, error: "pipeline=<id> needs run=<n>, a whole number from 1; got ''" });
  for (const n of ["0", "-1", "1.5", "01", "x"]) assert.equal((await answer(`grant=1&use=${n}`)).status, 400, n);
  assert.match((await answer("grant=1&run=1")).error, /grant=<id> needs use=<n>/);
  // The verifying server's deployment names only the registry and the market.
  for (const [query, contract] of [["pipeline=1&run=1", "Pipelines"], ["collaboration=0x1f&run=2", "Collaborations"], ["grant=7&use=1", "Grants"]] as const) {
    assert.deepEqual(await answer(query), { status: 404, error: `this dashboard's deployment names no ${contract} contract` });
  }
  assert.equal((await fetch(`${server.url}api/provenance?pipeline=1&run=1`)).status, 404, "without a policy nothing is verified");
});

test("Prometheus samples are parsed by name, labelled ones with their labels", () => {
  const parsed = parsePrometheus("# HELP x y\n# TYPE tasks_seen_total counter\ntasks_seen_total 3\ntasks_failed_total{code=\"X\"} 1\ntask_duration_seconds_sum 0.25\n\n");
  assert.deepEqual(parsed, { tasks_seen_total: 3, 'tasks_failed_total{code="X"}': 1, task_duration_seconds_sum: 0.25 });
});

test("a deployment or network file is read with its optional contracts; anything else is refused with the file and field named", async () => {
  const deployment = { chainId: 31337, registry, market, deployBlock: "2", pipelines: vault, somethingNew: 1 };
  assert.deepEqual(parseDashboardDeployment(deployment, "d.json"), { chainId: 31337, registry, market, deployBlock: "2", pipelines: vault });
  const network = { version: 1, chainId: 31337, endpoints: { rpc: "http://127.0.0.1:8545", ipfs: "http://127.0.0.1:8546" }, deployment: { registry, market, deployBlock: "7", testToken: vault }, manifest: "manifest.json" };
  assert.deepEqual(parseDashboardDeployment(network, "network.json"), { chainId: 31337, registry, market, deployBlock: "7", testToken: vault });
  for (const [bad, field] of [
    [{ registry: "0x12", market, deployBlock: "1" }, /registry is not a 20-byte hex address/],
    [{ registry, deployBlock: "1" }, /market/],
    [{ registry, market, deployBlock: "one" }, /deployBlock/],
    [{ ...deployment, grants: "nope" }, /grants is not a 20-byte hex address/],
    [[], /\(top level\)/],
  ] as const) {
    assert.throws(() => parseDashboardDeployment(bad, "bad.json"), (e) => e instanceof DashboardDeploymentError && /^bad\.json is not a Cloister deployment/.test(e.message) && field.test(e.message));
  }
  const file = join(dir, "broken.json");
  await writeFile(file, "{ not json");
  await assert.rejects(readDashboardDeployment(file), (e) => e instanceof DashboardDeploymentError && e.message.includes(file) && /not JSON/.test(e.message));
  await assert.rejects(readDashboardDeployment(join(dir, "missing.json")), /cannot read the deployment file/);
});

test("'cloister dashboard' serves any network, shows an unusable deployment file as the page's problem, and stops on SIGTERM", async () => {
  const bad = join(dir, "bad-deployment.json");
  await writeFile(bad, JSON.stringify({ registry: "0x12", market, deployBlock: "1" }));
  const cli = fileURLToPath(new URL("../../bin/cloister.js", import.meta.url));
  const child = spawn(process.execPath, [cli, "dashboard", "--rpc", "http://127.0.0.1:18545", "--ipfs", "http://127.0.0.1:18546", "--deployment", bad, "--port", "0", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once("line", resolve);
      void exited.then((code) => reject(new Error(`cloister dashboard exited (${code}) before it served`)));
    });
    const started = JSON.parse(first) as { ready: boolean; url: string; deploymentProblem: string; policy: string };
    assert.equal(started.ready, true);
    assert.match(started.deploymentProblem, /bad-deployment\.json is not a Cloister deployment: registry/);
    const config = (await (await fetch(`${started.url}config.json`)).json()) as { deployment: unknown; deploymentProblem: string };
    assert.equal(config.deployment, null);
    assert.equal(config.deploymentProblem, started.deploymentProblem);
  } finally {
    child.kill("SIGTERM");
  }
  assert.equal(await exited, 0);
  await assert.rejects(
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [cli, "dashboard", "--rpc", "localhost:8545", "--ipfs", "http://127.0.0.1:1"], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.once("exit", (code) => (code === 0 ? resolve(code) : reject(Object.assign(new Error(stderr), { code }))));
    }),
    (e: Error & { code: number }) => e.code === 2 && /--rpc takes a http:\/\/… or https:\/\/… URL/.test(e.message),
  );
});
