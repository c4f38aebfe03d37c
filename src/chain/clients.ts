/**
 * viem clients over the in-process chain's EIP-1193 provider or over any
 * Ethereum JSON-RPC endpoint, by HTTP or by WebSocket. Every Cloister chain
 * action takes one of these.
 */
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  http,
  publicActions,
  type Account,
  type Chain,
  type PublicClient,
  type Transport,
} from "viem";
import type { Eip1193Provider } from "./eip1193.ts";
import type { WebSocketProvider } from "./ws-provider.ts";

/**
 * Where the chain is: an in-process provider, a JSON-RPC URL over HTTP, or a JSON-RPC WebSocket
 * (openWebSocketProvider: one connection per process, which its opener closes).
 */
export type ChainEndpoint = { provider: Eip1193Provider } | { rpcUrl: string } | { webSocket: WebSocketProvider };

export interface ClientOptions {
  endpoint: ChainEndpoint;
  chain: Chain;
  /** Block and receipt polling interval; defaults to 50 ms in process, 500 ms over the network. */
  pollingInterval?: number;
}

export function chainDefinition(chainId: number, rpcUrl?: string): Chain {
  return defineChain({
    id: chainId,
    name: chainId === 31337 ? "Cloister local" : `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: rpcUrl ? [rpcUrl] : [] } },
  });
}

function transportOf(endpoint: ChainEndpoint): Transport {
  // In process there is no network to retry over: a failed request (a revert) fails at once.
  if ("provider" in endpoint) return custom(endpoint.provider, { retryCount: 0 });
  // viem retries a WebSocket's transient failures as it does HTTP's.
  if ("webSocket" in endpoint) return custom(endpoint.webSocket, { key: "webSocket", name: "WebSocket JSON-RPC" });
  return http(endpoint.rpcUrl);
}

function pollingOf(options: ClientOptions): number {
  return options.pollingInterval ?? ("provider" in options.endpoint ? 50 : 500);
}

export type ReaderClient = PublicClient<Transport, Chain>;

export function createReaderClient(options: ClientOptions): ReaderClient {
  return createPublicClient({ chain: options.chain, transport: transportOf(options.endpoint), pollingInterval: pollingOf(options) });
}

/** A wallet client that can also read (simulate, wait for receipts). */
export function createWriterClient(options: ClientOptions & { account: Account }) {
  return createWalletClient({
    account: options.account,
    chain: options.chain,
    transport: transportOf(options.endpoint),
    pollingInterval: pollingOf(options),
  }).extend(publicActions);
}

export type WriterClient = ReturnType<typeof createWriterClient>;
