/**
 * An Ethereum JSON-RPC 2.0 server over HTTP in front of an EIP-1193 provider
 * (the in-process EDR chain of local-chain.ts, with its block journal), so
 * other processes reach the chain like any Ethereum node.
 *
 * Security: like a development node it has no authentication and the chain it
 * serves has unlocked, well-known development accounts, so it binds to a
 * loopback address only and refuses requests that carry an Origin header (a
 * web page's cross-site POST could otherwise send transactions from those
 * accounts); Node and CLI clients send none.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Eip1193Provider } from "./eip1193.ts";
import { listenOnLoopback, LOOPBACK_HOSTS } from "../util/loopback-http.ts";

export interface ChainRpcServerOptions {
  provider: Eip1193Provider;
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Largest accepted request body; default 16 MiB (task specs travel in calldata). */
  maxBodyBytes?: number;
}

export interface ChainRpcServer {
  /** The JSON-RPC URL, e.g. http://127.0.0.1:8545. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections; the provider stays open. */
  close(): Promise<void>;
}

export class ChainRpcServerError extends Error {
  readonly code = "CHAIN_RPC_SERVER";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ChainRpcServerError";
  }
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

/** JSON-RPC 2.0 error codes. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;

type JsonRpcId = string | number | null;
interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}
type JsonRpcResponse = { jsonrpc: "2.0"; id: JsonRpcId } & ({ result: unknown } | { error: JsonRpcError });

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startChainRpcServer(options: ChainRpcServerOptions): Promise<ChainRpcServer> {
  const { provider, host = "127.0.0.1", port = 0, maxBodyBytes = DEFAULT_MAX_BODY } = options;
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new ChainRpcServerError(
      `refusing to serve the chain's JSON-RPC API on ${host}: it has no authentication and unlocked development accounts; bind to 127.0.0.1`,
    );
  }

  const server = createServer((req, res) => {
    handleHttp(provider, maxBodyBytes, req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      sendJson(res, status, { jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: (err as Error).message } });
    });
  });

  return listenOnLoopback(server, host, port, (err) => new ChainRpcServerError(`cannot listen on ${host}:${port}: ${err.message}; pick another port`, { cause: err }));
}

async function handleHttp(provider: Eip1193Provider, maxBodyBytes: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.headers.origin !== undefined) throw new HttpError(403, "cross-origin requests are refused by this node");
  if (req.method !== "POST") throw new HttpError(405, `${req.method ?? "?"} is not supported: send JSON-RPC requests with POST`);
  const body = await readBody(req, maxBodyBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    sendJson(res, 200, { jsonrpc: "2.0", id: null, error: { code: PARSE_ERROR, message: "the request body is not valid JSON" } });
    return;
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) {
      sendJson(res, 200, { jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: "an empty batch is not a request" } });
      return;
    }
    // Batch members run in order: a batch may send transactions that depend on each other.
    const responses: JsonRpcResponse[] = [];
    for (const request of parsed) responses.push(await handleRequest(provider, request));
    sendJson(res, 200, responses);
    return;
  }
  sendJson(res, 200, await handleRequest(provider, parsed));
}

async function handleRequest(provider: Eip1193Provider, request: unknown): Promise<JsonRpcResponse> {
  const r = request as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  const id: JsonRpcId = typeof r?.id === "string" || typeof r?.id === "number" ? r.id : null;
  if (typeof r !== "object" || r === null || r.jsonrpc !== "2.0" || typeof r.method !== "string") {
    return { jsonrpc: "2.0", id, error: { code: INVALID_REQUEST, message: 'a request is {"jsonrpc":"2.0","id":…,"method":"…","params":[…]}' } };
  }
  if (r.params !== undefined && (typeof r.params !== "object" || r.params === null)) {
    return { jsonrpc: "2.0", id, error: { code: INVALID_REQUEST, message: "params must be an array or an object" } };
  }
  try {
    const result = await provider.request({ method: r.method, params: r.params as readonly unknown[] | object | undefined });
    return { jsonrpc: "2.0", id, result: result ?? null };
  } catch (err) {
    return { jsonrpc: "2.0", id, error: toJsonRpcError(err) };
  }
}

/** Keeps the provider's code and revert data, which clients decode into typed contract errors. */
function toJsonRpcError(err: unknown): JsonRpcError {
  const e = err as { code?: unknown; message?: unknown; data?: unknown };
  const code = typeof e?.code === "number" && Number.isInteger(e.code) ? e.code : INTERNAL_ERROR;
  const message = typeof e?.message === "string" ? e.message : String(err);
  return e?.data === undefined ? { code, message } : { code, message, data: e.data };
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new HttpError(413, `the request is larger than ${maxBytes} bytes, the limit of this node`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
}
