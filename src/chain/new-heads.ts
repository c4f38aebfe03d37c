/**
 * New chain heads by push: a standard `eth_subscribe("newHeads")` over the
 * process's JSON-RPC WebSocket (ws-provider.ts; any Ethereum node's, or
 * Cloister's chain RPC server), the same connection that carries its
 * requests. A head is only a wake-up for code that reads the chain by block
 * range, and polling stays its fallback: while the connection is down,
 * nothing is reported, and the subscription is made again on each
 * reconnection.
 */
import type { Address, Client, Hex } from "viem";
import { getBlockNumber } from "viem/actions";
import { bloomMayHoldEvents, parseLogsBloom } from "./logs-bloom.ts";
import { openWebSocketProvider, type WebSocketProvider } from "./ws-provider.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

export class NewHeadsError extends CloisterError<"NEW_HEADS"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("NEW_HEADS", message, options);
  }
}

/** Something that tells watchers when to read the chain again. */
export interface HeadSource {
  /** True while new heads arrive by push; while false, a watcher polls at its own pace. */
  readonly live: boolean;
  /** The highest head number pushed so far (undefined before the first); a watcher need not ask for it. */
  readonly latest: bigint | undefined;
  /** Calls `wake` on every new head and whenever `live` changes, until the returned function is called. */
  subscribe(wake: () => void): () => void;
  /** The logs bloom of a recently pushed head (logs-bloom.ts), if its header carried one. */
  bloomOf(blockNumber: bigint): Uint8Array | undefined;
}

/** Pushed heads whose blooms are kept. */
const KEPT_BLOOMS = 256;
/** A range longer than this is read without looking at blooms. */
const MAX_BLOOM_RANGE = 64n;

/**
 * One newHeads subscription shared by every watcher of a process, over the process's WebSocket provider
 * (or, given a URL, a connection of its own that close() closes). `onError` hears of a refused or failed
 * subscription (the watchers poll until the next reconnection subscribes again); the connection's own
 * failures are the provider's to report.
 */
export function newHeadSource(
  options: ({ webSocket: WebSocketProvider } | { wsUrl: string }) & { onError?: (error: Error) => void },
): HeadSource & { close(): Promise<void> } {
  const own = "wsUrl" in options ? openWebSocketProvider({ url: options.wsUrl }) : undefined;
  const webSocket = own ?? (options as { webSocket: WebSocketProvider }).webSocket;
  const listeners = new Set<() => void>();
  let live = false;
  let latest: bigint | undefined;
  const blooms = new Map<bigint, Uint8Array>();
  let subscription: string | undefined;
  /** Counts connections, so that a subscription made on a connection that has since dropped is ignored. */
  let connection = 0;
  let closed = false;
  const wakeAll = () => {
    for (const wake of listeners) wake();
  };
  const report = (n: bigint) => {
    if (latest === undefined || n > latest) latest = n;
    wakeAll();
  };
  /** A head without a well-formed bloom keeps none: its block's logs are read. */
  const keepBloom = (n: bigint, bloom: Hex) => {
    try {
      blooms.set(n, parseLogsBloom(bloom));
    } catch {
      return;
    }
    if (blooms.size > KEPT_BLOOMS) blooms.delete(blooms.keys().next().value!);
  };
  const subscribe = async () => {
    const on = ++connection;
    try {
      const id = await webSocket.request({ method: "eth_subscribe", params: ["newHeads"] });
      if (typeof id !== "string") throw new NewHeadsError(`the server answered eth_subscribe("newHeads") with ${JSON.stringify(id)}, not a subscription id`);
      if (on !== connection || closed) return;
      subscription = id;
      live = true;
      wakeAll();
      // Heads mined while disconnected were not pushed: report where the chain is now.
      report(BigInt((await webSocket.request({ method: "eth_blockNumber", params: [] })) as string));
    } catch (error) {
      if (on !== connection || closed) return;
      options.onError?.(new NewHeadsError(`new heads from ${webSocket.url}: ${(error as Error).message}; polling instead until the next reconnection`, { cause: error }));
    }
  };
  const stopConnection = webSocket.onConnection((connected) => {
    if (connected) return void subscribe();
    connection++;
    subscription = undefined;
    live = false;
    wakeAll();
  });
  const stopNotifications = webSocket.onNotification(({ subscription: id, result }) => {
    const header = result as { number?: unknown; logsBloom?: unknown } | null;
    if (id !== subscription || typeof header?.number !== "string") return;
    const n = BigInt(header.number);
    if (typeof header.logsBloom === "string") keepBloom(n, header.logsBloom as Hex);
    report(n);
  });
  if (webSocket.connected) void subscribe();
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
    bloomOf(blockNumber) {
      return blooms.get(blockNumber);
    },
    async close() {
      closed = true;
      stopConnection();
      stopNotifications();
      live = false;
      const id = subscription;
      subscription = undefined;
      // Best effort: the connection may be down, and its end ends the subscription anyway.
      if (id !== undefined && webSocket.connected) await webSocket.request({ method: "eth_unsubscribe", params: [id] }).catch(() => {});
      await own?.close();
    },
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

/**
 * True when every block from `fromBlock` to `toBlock` was pushed with a logs bloom that certainly holds no
 * event of `selectors` from `address`: a watcher may then move past the range without reading its logs.
 * False (read them) for a block pushed without a bloom, or not pushed at all.
 */
export function headsRuleOut(heads: HeadSource | undefined, fromBlock: bigint, toBlock: bigint, address: Address, selectors: readonly Hex[]): boolean {
  if (!heads || toBlock - fromBlock >= MAX_BLOOM_RANGE) return false;
  for (let n = fromBlock; n <= toBlock; n++) {
    const bloom = heads.bloomOf(n);
    if (!bloom || bloomMayHoldEvents(bloom, address, selectors)) return false;
  }
  return true;
}
