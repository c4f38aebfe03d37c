/**
 * close() of the chain's JSON-RPC server while nodes reconnect: a node's WebSocket provider reconnects
 * within milliseconds of losing its connection. If the server waits for the chain's unsubscribes while it
 * still accepts upgrades, the reconnected sockets stay open and the HTTP server never finishes closing
 * (the fault test hung for minutes with the port still taken).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";
import type { Eip1193Message } from "../../src/chain/eip1193.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";

const UNSUBSCRIBE_DELAY_MS = 150;
const CLOSE_BOUND_MS = 3_000;

/** A provider with subscriptions whose eth_unsubscribe takes a while, as a busy chain's can. */
function slowUnsubscribeProvider() {
  let next = 0;
  return {
    request: async ({ method }: { method: string; params?: unknown }) => {
      if (method === "eth_subscribe") return `0x${(++next).toString(16)}`;
      if (method === "eth_unsubscribe") {
        await new Promise((resolve) => setTimeout(resolve, UNSUBSCRIBE_DELAY_MS));
        return true;
      }
      return "0x7a69";
    },
    on: (_event: "message", _listener: (message: Eip1193Message) => void) => {},
    removeListener: (_event: "message", _listener: (message: Eip1193Message) => void) => {},
  };
}

/** A client that subscribes, and on every close reconnects at once and subscribes again, until stopped. */
function eagerClient(url: string) {
  let stopped = false;
  const open = new Set<WebSocket>();
  const connect = (): void => {
    if (stopped) return;
    const ws = new WebSocket(url);
    open.add(ws);
    ws.on("open", () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] })));
    ws.on("error", () => {});
    ws.on("close", () => {
      open.delete(ws);
      setImmediate(connect);
    });
  };
  for (let i = 0; i < 4; i++) connect();
  return {
    stop() {
      stopped = true;
      for (const ws of open) ws.terminate();
    },
  };
}

test("close() finishes in bounded time while clients reconnect at once, and frees the port", async () => {
  const server = await startChainRpcServer({ provider: slowUnsubscribeProvider() });
  const clients = eagerClient(server.wsUrl);
  try {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`close() did not finish within ${CLOSE_BOUND_MS} ms`)), CLOSE_BOUND_MS);
    });
    try {
      await Promise.race([server.close(), bound]);
    } finally {
      clearTimeout(timer);
    }
    assert.ok(Date.now() - started < CLOSE_BOUND_MS);
  } finally {
    clients.stop();
  }
  // The same port serves again at once, as the devnet's stop-and-start of its RPC server needs.
  const again = await startChainRpcServer({ provider: slowUnsubscribeProvider(), port: server.port });
  try {
    const reply = (await (await fetch(again.url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId" }) })).json()) as { result: string };
    assert.equal(reply.result, "0x7a69");
  } finally {
    await again.close();
  }
});
