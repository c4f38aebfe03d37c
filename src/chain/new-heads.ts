/**
 * New chain heads by push: a standard `eth_subscribe("newHeads")` over a
 * JSON-RPC WebSocket (any Ethereum node's, or Cloister's chain RPC server).
 * A head is only a wake-up for code that reads the chain by block range, and
 * polling stays its fallback: while the connection is down, nothing is
 * reported, and it reconnects (with backoff) until closed.
 */
import type { Client } from "viem";
import { getBlockNumber } from "viem/actions";
import WebSocket from "ws";

export interface NewHeadsOptions {
  /** e.g. ws://127.0.0.1:8545 */
  wsUrl: string;
  /** The head when the subscription starts (and again after each reconnection), then every new head. */
  onBlockNumber: (blockNumber: bigint) => void;
  /** A failed connection or a refused subscription; it is retried. */
  onError?: (error: Error) => void;
  /** True once the subscription is live, false when its connection drops. */
  onLive?: (live: boolean) => void;
  /** Longest wait between reconnection attempts (default 2000 ms); the wait starts at 50 ms and doubles. */
  maxReconnectDelayMs?: number;
}

export class NewHeadsError extends Error {
  readonly code = "NEW_HEADS";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NewHeadsError";
  }
}

const SUBSCRIBE_ID = 1;
const BLOCK_NUMBER_ID = 2;
const FIRST_RECONNECT_DELAY_MS = 50;

export function watchNewHeads(options: NewHeadsOptions): { close(): Promise<void> } {
  const maxDelay = options.maxReconnectDelayMs ?? 2_000;
  let closed = false;
  let socket: WebSocket | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  const fail = (message: string, cause?: unknown) => {
    if (!closed) options.onError?.(new NewHeadsError(`new heads from ${options.wsUrl}: ${message}`, { cause }));
  };

  const connect = () => {
    const ws = new WebSocket(options.wsUrl);
    socket = ws;
    let live = false;
    ws.on("open", () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: SUBSCRIBE_ID, method: "eth_subscribe", params: ["newHeads"] })));
    ws.on("message", (data) => {
      let message: { id?: unknown; method?: unknown; result?: unknown; error?: { message?: unknown }; params?: { result?: { number?: unknown } } };
      try {
        message = JSON.parse(String(data)) as typeof message;
      } catch (error) {
        fail("the server sent a message that is not JSON", error);
        return;
      }
      if (message.method === "eth_subscription") {
        const number = message.params?.result?.number;
        if (typeof number === "string") options.onBlockNumber(BigInt(number));
      } else if (message.id === SUBSCRIBE_ID) {
        if (message.error !== undefined || typeof message.result !== "string") {
          fail(`the server refused eth_subscribe("newHeads"): ${String(message.error?.message ?? "no subscription id")}`);
          ws.close();
          return;
        }
        live = true;
        failures = 0;
        options.onLive?.(true);
        // Heads mined while disconnected were not pushed: report where the chain is now.
        ws.send(JSON.stringify({ jsonrpc: "2.0", id: BLOCK_NUMBER_ID, method: "eth_blockNumber", params: [] }));
      } else if (message.id === BLOCK_NUMBER_ID && typeof message.result === "string") {
        options.onBlockNumber(BigInt(message.result));
      }
    });
    ws.on("error", (error) => fail(error.message, error));
    ws.on("close", () => {
      if (socket === ws) socket = undefined;
      if (live) options.onLive?.(false);
      if (closed) return;
      const delay = Math.min(maxDelay, FIRST_RECONNECT_DELAY_MS * 2 ** failures);
      failures++;
      reconnectTimer = setTimeout(connect, delay);
    });
  };
  connect();

  return {
    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      const ws = socket;
      if (!ws) return;
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
        else ws.terminate();
      });
    },
  };
}

/** Something that tells watchers when to read the chain again. */
export interface HeadSource {
  /** True while new heads arrive by push; while false, a watcher polls at its own pace. */
  readonly live: boolean;
  /** The highest head number pushed so far (undefined before the first); a watcher need not ask for it. */
  readonly latest: bigint | undefined;
  /** Calls `wake` on every new head and whenever `live` changes, until the returned function is called. */
  subscribe(wake: () => void): () => void;
}

/** One newHeads subscription shared by every watcher of a process. */
export function newHeadSource(options: { wsUrl: string; onError?: (error: Error) => void }): HeadSource & { close(): Promise<void> } {
  const listeners = new Set<() => void>();
  let live = false;
  let latest: bigint | undefined;
  const wakeAll = () => {
    for (const wake of listeners) wake();
  };
  const watch = watchNewHeads({
    wsUrl: options.wsUrl,
    onError: options.onError,
    onBlockNumber: (n) => {
      if (latest === undefined || n > latest) latest = n;
      wakeAll();
    },
    onLive: (now) => {
      live = now;
      wakeAll();
    },
  });
  return {
    get live() {
      return live;
    },
    get latest() {
      return latest;
    },
    subscribe(wake) {
      listeners.add(wake);
      return () => void listeners.delete(wake);
    },
    close: () => watch.close(),
  };
}

/**
 * The chain's latest block number for a watcher that has read up to `readTo`: the pushed head when one
 * beyond it has arrived (saving a request per block), else asked of the chain.
 */
export async function latestBlockNumber(reader: Client, heads: HeadSource | undefined, readTo: bigint): Promise<bigint> {
  const pushed = heads?.live ? heads.latest : undefined;
  return pushed !== undefined && pushed > readTo ? pushed : getBlockNumber(reader, { cacheTime: 0 });
}
