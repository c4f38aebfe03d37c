/**
 * The chain's JSON-RPC server over WebSocket: the same methods as over HTTP, eth_subscribe("newHeads")
 * with standard notifications, eth_unsubscribe, nothing cross-origin, a clean close; and the
 * newHeads source (new-heads.ts) that subscribes again when the server comes back.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { parseEther, type Hex } from "viem";
import WebSocket from "ws";
import { createWriterClient, type WriterClient } from "../../src/chain/clients.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { newHeadSource } from "../../src/chain/new-heads.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { openWebSocketProvider } from "../../src/chain/ws-provider.ts";

let chain: LocalChain;
let server: ChainRpcServer;
let sender: WriterClient;
const recipient = "0x00000000000000000000000000000000c0ffee00";

before(async () => {
  chain = await startLocalChain({ operators: 0 });
  server = await startChainRpcServer({ provider: chain.provider });
  sender = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.requester });
});
after(async () => {
  await server?.close();
  await chain?.close();
});

interface Frame {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string };
  method?: string;
  params?: { subscription: string; result: { number: Hex; hash: Hex; parentHash: Hex } };
}

/** A raw WebSocket JSON-RPC client: replies by id, notifications in arrival order. */
async function connect(url = server.wsUrl): Promise<{ ws: WebSocket; call(method: string, params?: unknown[]): Promise<Frame>; send(body: unknown): Promise<Frame | Frame[]>; notifications: Frame[]; closed: Promise<number> }> {
  const ws = new WebSocket(url);
  const notifications: Frame[] = [];
  const pending = new Map<unknown, (frame: Frame | Frame[]) => void>();
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.on("message", (data) => {
    const frame = JSON.parse(String(data)) as Frame | Frame[];
    if (!Array.isArray(frame) && frame.method === "eth_subscription") notifications.push(frame);
    else pending.get(Array.isArray(frame) ? frame[0]!.id : frame.id)?.(frame);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  let nextId = 1;
  const send = (body: unknown) =>
    new Promise<Frame | Frame[]>((resolve) => {
      pending.set(Array.isArray(body) ? (body[0] as { id: unknown }).id : (body as { id: unknown }).id, resolve);
      ws.send(JSON.stringify(body));
    });
  const call = async (method: string, params: unknown[] = []) => (await send({ jsonrpc: "2.0", id: nextId++, method, params })) as Frame;
  return { ws, call, send, notifications, closed };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("every JSON-RPC method answers over WebSocket on the HTTP port, batches too", async () => {
  assert.equal(server.wsUrl, server.url.replace("http:", "ws:"));
  const client = await connect();
  try {
    assert.equal(Number((await client.call("eth_chainId")).result), chain.chainId);
    const batch = (await client.send([{ jsonrpc: "2.0", id: "a", method: "eth_blockNumber" }, { jsonrpc: "2.0", id: "b", method: "no_such_method", params: [] }])) as Frame[];
    assert.equal(batch[0]!.id, "a");
    assert.equal(typeof batch[0]!.result, "string");
    assert.equal(typeof batch[1]!.error?.code, "number");
    const hash = (await client.call("eth_sendRawTransaction", [await sender.signTransaction(await sender.prepareTransactionRequest({ to: recipient, value: parseEther("1") }))])).result as Hex;
    const receipt = (await client.call("eth_getTransactionReceipt", [hash])).result as { status: Hex };
    assert.equal(receipt.status, "0x1");
  } finally {
    client.ws.close();
    await client.closed;
  }
});

test("eth_subscribe newHeads pushes every new block's header as a standard notification, until eth_unsubscribe", async () => {
  const client = await connect();
  const other = await connect();
  try {
    const subscribed = await client.call("eth_subscribe", ["newHeads"]);
    const id = subscribed.result as string;
    assert.equal(typeof id, "string");
    const before = await sender.getBlockNumber({ cacheTime: 0 });
    const hash = await sender.sendTransaction({ to: recipient, value: 1n });
    const receipt = await sender.waitForTransactionReceipt({ hash });
    await chain.provider.request({ method: "hardhat_mine", params: ["0x2"] });
    await until(() => client.notifications.length >= 3, "three newHeads notifications");
    const [first, second, third] = client.notifications;
    for (const n of [first, second, third]) {
      assert.equal(n!.method, "eth_subscription");
      assert.equal(n!.params!.subscription, id);
    }
    assert.deepEqual([first, second, third].map((n) => BigInt(n!.params!.result.number)), [before + 1n, before + 2n, before + 3n]);
    assert.equal(first!.params!.result.hash, receipt.blockHash);
    assert.equal(second!.params!.result.parentHash, receipt.blockHash);
    assert.equal(other.notifications.length, 0, "a socket gets only its own subscriptions' notifications");

    // Another socket cannot end this subscription; its owner can, once.
    assert.equal((await other.call("eth_unsubscribe", [id])).result, false);
    assert.equal((await client.call("eth_unsubscribe", [id])).result, true);
    assert.equal((await client.call("eth_unsubscribe", [id])).result, false);
    const seen = client.notifications.length;
    await sender.waitForTransactionReceipt({ hash: await sender.sendTransaction({ to: recipient, value: 1n }) });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(client.notifications.length, seen, "no notification after eth_unsubscribe");
  } finally {
    client.ws.close();
    other.ws.close();
    await Promise.all([client.closed, other.closed]);
  }
});

test("over HTTP eth_subscribe is refused, and a WebSocket upgrade with an Origin header is refused", async () => {
  const reply = (await (await fetch(server.url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }) })).json()) as Frame;
  assert.equal(reply.error?.code, -32601);
  assert.match(reply.error!.message, /WebSocket/);

  const status = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl, { origin: "https://evil.example" });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("open", () => reject(new Error("a cross-origin WebSocket was accepted")));
    ws.once("error", () => {});
  });
  assert.equal(status, 403);
});

test("close() closes every WebSocket (going away) and ends its subscriptions; the head source subscribes again on a new server on the port", async () => {
  const ownServer = await startChainRpcServer({ provider: chain.provider });
  const client = await connect(ownServer.wsUrl);
  const webSocket = openWebSocketProvider({ url: ownServer.wsUrl, maxReconnectDelayMs: 100 });
  const heads = newHeadSource({ webSocket });
  const live: boolean[] = [];
  heads.subscribe(() => {
    if (live.at(-1) !== heads.live) live.push(heads.live);
  });
  let restarted: ChainRpcServer | undefined;
  try {
    const id = (await client.call("eth_subscribe", ["newHeads"])).result as string;
    assert.equal(typeof id, "string");
    const start = await sender.getBlockNumber({ cacheTime: 0 });
    await until(() => heads.live && heads.latest === start, "the source's subscription and the head at subscription time");

    await ownServer.close();
    assert.equal(await client.closed, 1001);
    assert.equal(await chain.provider.request({ method: "eth_unsubscribe", params: [id] }), false, "the server ended its subscription at the provider");
    await until(() => !heads.live, "the source to notice the close");
    // Blocks mined while the server is down are not pushed.
    await sender.waitForTransactionReceipt({ hash: await sender.sendTransaction({ to: recipient, value: 1n }) });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(heads.latest, start);

    restarted = await startChainRpcServer({ provider: chain.provider, port: ownServer.port });
    await until(() => heads.latest === start + 1n, "the head after reconnecting");
    assert.equal(heads.live, true);
    await sender.waitForTransactionReceipt({ hash: await sender.sendTransaction({ to: recipient, value: 1n }) });
    await until(() => heads.latest === start + 2n, "a head pushed after reconnecting");
    assert.deepEqual(live, [true, false, true]);
  } finally {
    await heads.close();
    await webSocket.close();
    await restarted?.close();
  }
  assert.equal(heads.live, false);
});

test("a head source wakes its subscribers on each head and says whether heads arrive", async () => {
  const source = newHeadSource({ wsUrl: server.wsUrl });
  let wakes = 0;
  const unsubscribe = source.subscribe(() => wakes++);
  try {
    await until(() => source.live, "the source to go live");
    const before = wakes;
    await sender.waitForTransactionReceipt({ hash: await sender.sendTransaction({ to: recipient, value: 1n }) });
    await until(() => wakes > before, "a wake-up on the new head");
    unsubscribe();
    const after = wakes;
    await sender.waitForTransactionReceipt({ hash: await sender.sendTransaction({ to: recipient, value: 1n }) });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(wakes, after, "an unsubscribed listener is not woken");
  } finally {
    await source.close();
  }
  assert.equal(source.live, false);
});
