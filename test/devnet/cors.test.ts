/**
 * CORS on the devnet's chain RPC and IPFS API: an allowed origin (the
 * dashboard's, or one on the configured allow-list) is served, preflight
 * included; any other origin is refused, preflight included; a page from an
 * allowed origin still cannot use the node's unlocked accounts, nor write to
 * IPFS.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { WebSocket } from "ws";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { crossOriginRefused, startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { openHeliaStore, type HeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer, type KuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";
import { normalizeOrigin, OriginAllowList, OriginAllowListError } from "../../src/util/cors.ts";

const DASHBOARD = "http://127.0.0.1:18548";
const LISTED = "https://console.example.org";
const EVIL = "https://evil.example";

let dir: string;
let chain: LocalChain;
let rpc: ChainRpcServer;
let store: HeliaStore;
let kubo: KuboRpcServer;
const allowList = new OriginAllowList([LISTED]);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-cors-"));
  chain = await startLocalChain({ dataDir: join(dir, "chain") });
  rpc = await startChainRpcServer({ provider: chain.provider, allowedOrigins: allowList });
  store = await openHeliaStore(join(dir, "ipfs"));
  kubo = await startKuboRpcServer({ store, allowedOrigins: allowList });
  // Added while serving, as the devnet does once its dashboard has a port.
  allowList.add(DASHBOARD);
});
after(async () => {
  await kubo?.close();
  await store?.close();
  await rpc?.close();
  await chain?.close();
  await rm(dir, { recursive: true, force: true });
});

const jsonRpc = (method: string, params: unknown[] = []) => JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });

test("the chain RPC serves an allowed origin's requests with CORS headers and refuses any other origin", async () => {
  for (const origin of [DASHBOARD, LISTED]) {
    const res = await fetch(rpc.url, { method: "POST", headers: { origin, "content-type": "application/json" }, body: jsonRpc("eth_chainId") });
    assert.equal(res.status, 200, origin);
    assert.equal(res.headers.get("access-control-allow-origin"), origin);
    assert.equal(Number(((await res.json()) as { result: string }).result), chain.chainId);
  }
  const refused = await fetch(rpc.url, { method: "POST", headers: { origin: EVIL, "content-type": "application/json" }, body: jsonRpc("eth_chainId") });
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  assert.match(await refused.text(), /refused by this node/);
  // No Origin: a Node or CLI client, served as before.
  assert.equal((await fetch(rpc.url, { method: "POST", body: jsonRpc("eth_chainId") })).status, 200);
});

test("the chain RPC answers an allowed preflight and refuses a foreign one, or one asking for other methods or headers", async () => {
  const preflight = (origin: string, method = "POST", headers = "content-type") =>
    fetch(rpc.url, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers } });
  const ok = await preflight(DASHBOARD);
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), DASHBOARD);
  assert.match(ok.headers.get("access-control-allow-methods") ?? "", /POST/);
  assert.match(ok.headers.get("access-control-allow-headers") ?? "", /content-type/);
  assert.equal((await preflight(EVIL)).status, 403);
  assert.equal((await preflight(DASHBOARD, "DELETE")).status, 403);
  assert.equal((await preflight(DASHBOARD, "POST", "content-type, x-secret")).status, 403);
});

test("a page from an allowed origin cannot use the node's unlocked accounts or dev methods", async () => {
  const [from] = (await chain.provider.request({ method: "eth_accounts" })) as string[];
  for (const [method, params] of [
    ["eth_sendTransaction", [{ from, to: from, value: "0x1" }]],
    ["eth_sign", [from, "0x00"]],
    ["hardhat_mine", []],
    ["evm_snapshot", []],
  ] as const) {
    const res = await fetch(rpc.url, { method: "POST", headers: { origin: DASHBOARD, "content-type": "application/json" }, body: jsonRpc(method, [...params]) });
    const body = (await res.json()) as { error?: { message: string } };
    assert.match(body.error?.message ?? "", /not served to web pages/, method);
  }
  assert.equal(crossOriginRefused("eth_sendRawTransaction"), false);
  assert.equal(crossOriginRefused("eth_getLogs"), false);
});

test("the chain's WebSocket accepts an allowed origin and refuses a foreign one", async () => {
  const open = (origin: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(rpc.wsUrl, { origin });
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
  const ws = await open(DASHBOARD);
  const reply = await new Promise<{ result?: string; error?: { message: string } }>((resolve) => {
    ws.once("message", (data) => resolve(JSON.parse(String(data))));
    ws.send(jsonRpc("eth_blockNumber"));
  });
  assert.equal(typeof reply.result, "string");
  const refusedSend = await new Promise<{ error?: { message: string } }>((resolve) => {
    ws.once("message", (data) => resolve(JSON.parse(String(data))));
    ws.send(jsonRpc("eth_sendTransaction", [{}]));
  });
  assert.match(refusedSend.error?.message ?? "", /not served to web pages/);
  ws.close();
  await assert.rejects(open(EVIL), /403/);
});

test("the IPFS API lets an allowed origin read, preflight included, and refuses writes and foreign origins", async () => {
  const cid = await store.put(new TextEncoder().encode("dashboard reads this"));
  const cat = (origin: string) => fetch(`${kubo.url}/api/v0/cat?arg=${cid}`, { method: "POST", headers: { origin } });
  const ok = await cat(LISTED);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("access-control-allow-origin"), LISTED);
  assert.equal(await ok.text(), "dashboard reads this");
  assert.equal((await cat(EVIL)).status, 403);
  const preflight = await fetch(`${kubo.url}/api/v0/cat?arg=${cid}`, { method: "OPTIONS", headers: { origin: DASHBOARD, "access-control-request-method": "POST" } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), DASHBOARD);
  const foreignPreflight = await fetch(`${kubo.url}/api/v0/cat?arg=${cid}`, { method: "OPTIONS", headers: { origin: EVIL, "access-control-request-method": "POST" } });
  assert.equal(foreignPreflight.status, 403);
  for (const command of [`pin/rm?arg=${cid}`, `block/rm?arg=${cid}`, "add"]) {
    const res = await fetch(`${kubo.url}/api/v0/${command}`, { method: "POST", headers: { origin: DASHBOARD } });
    assert.equal(res.status, 403, command);
    assert.match(await res.text(), /not served to web pages/);
  }
  assert.equal(await (await store.get(cid)).length, 20, "the blob is still there");
});

test("an allow-list takes origins only", () => {
  assert.equal(normalizeOrigin("http://LOCALHOST:8548/"), "http://localhost:8548");
  for (const bad of ["localhost:8548", "ftp://x.example", "http://x.example/path", "*"]) assert.throws(() => new OriginAllowList([bad]), OriginAllowListError, bad);
});
