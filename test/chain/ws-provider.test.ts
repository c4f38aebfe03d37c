/**
 * The EIP-1193 provider over one JSON-RPC WebSocket (ws-provider.ts) against the real chain RPC server:
 * viem clients work over it, a JSON-RPC error keeps its code, requests fail as transient while the
 * server is down and succeed again once it is back on the port (it never stops reconnecting), a
 * request the server never answers times out, and a connection whose peer goes silent is replaced.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, test } from "node:test";
import { parseEther, RpcRequestError, TimeoutError } from "viem";
import { WebSocketServer } from "ws";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { openWebSocketProvider, WebSocketProviderError } from "../../src/chain/ws-provider.ts";
import { isTransientError, withRetry } from "../../src/host/retry.ts";

let chain: LocalChain;
let server: ChainRpcServer;
const recipient = "0x00000000000000000000000000000000c0ffee01";

before(async () => {
  chain = await startLocalChain({ operators: 0 });
  server = await startChainRpcServer({ provider: chain.provider });
});
after(async () => {
  await server?.close();
  await chain?.close();
});

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("the request succeeded");
}

/** A WebSocket server that accepts connections and then does what `onConnection` says with each. */
async function rawServer(onConnection: (socket: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  wss.on("connection", (_ws, req) => onConnection(req.socket as Socket));
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

test("a viem writer over the WebSocket reads, sends and waits for receipts; a request made while connecting waits for the connection", async () => {
  const webSocket = openWebSocketProvider({ url: server.wsUrl });
  try {
    assert.equal(webSocket.connected, false);
    const writer = createWriterClient({ endpoint: { webSocket }, chain: chain.chain, account: chain.accounts.requester, pollingInterval: 20 });
    assert.equal(await writer.getChainId(), chain.chainId);
    assert.equal(webSocket.connected, true);
    const before = await writer.getBalance({ address: recipient });
    const hash = await writer.sendTransaction({ to: recipient, value: parseEther("1") });
    const receipt = await writer.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    assert.equal(await writer.getBalance({ address: recipient }), before + parseEther("1"));
    // Concurrent requests share the one connection and each gets its own reply.
    const numbers = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.getBlock({ blockNumber: BigInt(i % 2) })));
    assert.deepEqual(numbers.map((b) => b.number), Array.from({ length: 20 }, (_, i) => BigInt(i % 2)));
  } finally {
    await webSocket.close();
  }
});

test("a revert keeps the server's error code and revert data, and is not transient", async () => {
  const webSocket = openWebSocketProvider({ url: server.wsUrl });
  try {
    // Creation code that reverts with the 32-byte word 0xff: PUSH1 ff PUSH1 0 MSTORE PUSH1 20 PUSH1 0 REVERT.
    const params = [{ data: "0x60ff60005260206000fd" }, "latest"];
    const body = { jsonrpc: "2.0", id: 1, method: "eth_call", params };
    const overHttp = ((await (await fetch(server.url, { method: "POST", body: JSON.stringify(body) })).json()) as { error: { code: number; data?: unknown } }).error;
    assert.equal(overHttp.data, `0x${"ff".padStart(64, "0")}`);
    const error = await rejection(webSocket.request({ method: "eth_call", params }));
    assert.ok(error instanceof RpcRequestError, String(error));
    assert.equal(error.code, overHttp.code);
    assert.deepEqual(error.data, overHttp.data);
    assert.equal(isTransientError(error), false);
  } finally {
    await webSocket.close();
  }
});

test("while the server is down requests fail as transient; it reconnects (past many attempts) once the server is back on the port", async () => {
  const ownServer = await startChainRpcServer({ provider: chain.provider });
  const errors: WebSocketProviderError[] = [];
  const webSocket = openWebSocketProvider({ url: ownServer.wsUrl, maxReconnectDelayMs: 20, onError: (e) => errors.push(e) });
  const connection: boolean[] = [];
  webSocket.onConnection((connected) => connection.push(connected));
  let restarted: ChainRpcServer | undefined;
  try {
    assert.equal(await webSocket.request({ method: "eth_chainId" }), `0x${chain.chainId.toString(16)}`);
    await ownServer.close();
    await until(() => !webSocket.connected, "the provider to notice the close");
    const down = await rejection(webSocket.request({ method: "eth_blockNumber" }));
    assert.equal(isTransientError(down), true, String(down));
    assert.match(String((down as Error).message), /eth_blockNumber/);
    // Many failed attempts: it must not give up.
    await until(() => errors.length >= 15, "fifteen failed reconnection attempts");
    assert.ok(errors.every((e) => e.code === "CHAIN_WS_CONNECTION"));

    // A retry loop started during the outage succeeds once the server is back.
    const retried = withRetry(() => webSocket.request({ method: "eth_blockNumber" }), { what: "eth_blockNumber", baseMs: 20, maxMs: 50, maxAttempts: 100 });
    await new Promise((r) => setTimeout(r, 100));
    restarted = await startChainRpcServer({ provider: chain.provider, port: ownServer.port });
    assert.equal(typeof (await retried), "string");
    assert.deepEqual(connection, [true, false, true]);
  } finally {
    await webSocket.close();
    await restarted?.close();
  }
});

test("a request in flight when the connection drops fails as transient at once", async () => {
  let drop: (() => void) | undefined;
  const silent = await rawServer((socket) => (drop = () => socket.destroy()));
  const webSocket = openWebSocketProvider({ url: silent.url });
  try {
    const inFlight = rejection(webSocket.request({ method: "eth_blockNumber" }));
    await until(() => drop !== undefined, "the connection");
    const started = Date.now();
    drop!();
    const error = await inFlight;
    assert.ok(Date.now() - started < 1_000, "it did not wait for the request timeout");
    assert.equal(isTransientError(error), true, String(error));
  } finally {
    await webSocket.close();
    await silent.close();
  }
});

test("a request the server never answers times out, as transient", async () => {
  const silent = await rawServer(() => {});
  const webSocket = openWebSocketProvider({ url: silent.url, requestTimeoutMs: 200 });
  try {
    const started = Date.now();
    const error = await rejection(webSocket.request({ method: "eth_blockNumber" }));
    assert.ok(error instanceof TimeoutError, String(error));
    assert.ok(Date.now() - started >= 190);
    assert.equal(isTransientError(error), true);
  } finally {
    await webSocket.close();
    await silent.close();
  }
});

test("a connection whose peer stops answering pings is dropped and made again", async () => {
  let connections = 0;
  const hung = await rawServer((socket) => {
    // The first connection goes silent (it reads nothing more, so it answers no ping); later ones behave.
    if (connections++ === 0) socket.pause();
  });
  const webSocket = openWebSocketProvider({ url: hung.url, heartbeatMs: 50 });
  const connection: boolean[] = [];
  webSocket.onConnection((connected) => connection.push(connected));
  try {
    await until(() => connection.length >= 3, "a drop and a new connection", 3_000);
    assert.deepEqual(connection.slice(0, 3), [true, false, true]);
    assert.equal(connections, 2);
  } finally {
    await webSocket.close();
    await hung.close();
  }
});

test("after close(), requests fail with a typed error that is not transient", async () => {
  const webSocket = openWebSocketProvider({ url: server.wsUrl });
  await webSocket.request({ method: "eth_chainId" });
  await webSocket.close();
  assert.equal(webSocket.connected, false);
  const error = await rejection(webSocket.request({ method: "eth_chainId" }));
  assert.ok(error instanceof WebSocketProviderError);
  assert.equal(error.code, "CHAIN_WS_CLOSED");
  assert.equal(isTransientError(error), false);
});
