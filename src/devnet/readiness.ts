/**
 * Whether a devnet's every endpoint answers as a client would use it: the chain's JSON-RPC over
 * HTTP and over WebSocket (with the right chain id), the IPFS node's Kubo RPC API, the attestation
 * service's GET /deployment and each node's GET /healthz. `devnet up` says "ready" only after this.
 */
import { DevnetError } from "./errors.ts";

export interface DevnetEndpoints {
  chainId: number;
  rpcUrl: string;
  wsUrl: string;
  ipfsUrl: string;
  casUrl: string;
  /** Each node's health URL base (null: the node serves none). */
  nodeUrls: (string | null)[];
}

export async function checkEndpointsAnswer(e: DevnetEndpoints, timeoutMs = 10_000): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs);
  const checks: [string, () => Promise<void>][] = [
    [`chain JSON-RPC ${e.rpcUrl}`, () => expectChainIdOverHttp(e.rpcUrl, e.chainId, signal)],
    [`chain WebSocket ${e.wsUrl}`, () => expectChainIdOverWebSocket(e.wsUrl, e.chainId, timeoutMs)],
    [`IPFS ${e.ipfsUrl}`, () => expectOk(`${e.ipfsUrl}/api/v0/version`, { method: "POST", signal })],
    [`attestation service ${e.casUrl}`, () => expectOk(`${e.casUrl}/deployment`, { signal })],
    ...e.nodeUrls.flatMap((url, i): [string, () => Promise<void>][] => (url ? [[`node ${i} ${url}/healthz`, () => expectOk(`${url}/healthz`, { signal })]] : [])),
  ];
  const results = await Promise.allSettled(checks.map(([, check]) => check()));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${checks[i]![0]}: ${(r.reason as Error).message}`] : []));
  if (failed.length > 0) throw new DevnetError(`the devnet is not ready; these endpoints do not answer as they should:\n  ${failed.join("\n  ")}`);
}

async function expectOk(url: string, init: RequestInit): Promise<void> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

const chainIdRequest = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] });

function checkChainId(body: string, chainId: number): void {
  const result = (JSON.parse(body) as { result?: string }).result;
  if (result === undefined || Number(result) !== chainId) throw new Error(`eth_chainId answered ${body}, not ${chainId}`);
}

async function expectChainIdOverHttp(url: string, chainId: number, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: chainIdRequest, signal });
  checkChainId(await res.text(), chainId);
}

function expectChainIdOverWebSocket(url: string, chainId: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve();
    };
    socket.onopen = () => socket.send(chainIdRequest);
    socket.onmessage = (event) => {
      try {
        checkChainId(String(event.data), chainId);
        finish();
      } catch (error) {
        finish(error as Error);
      }
    };
    socket.onerror = () => finish(new Error("the connection failed"));
  });
}
