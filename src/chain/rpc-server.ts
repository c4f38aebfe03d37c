/**
 * An Ethereum JSON-RPC 2.0 server in front of an EIP-1193 provider (the
 * in-process EDR chain of local-chain.ts, with its block journal), so other
 * processes reach the chain like any Ethereum node: over HTTP (POST) and over
 * WebSocket on the same port (an HTTP upgrade, as Hardhat's and Geth's nodes
 * do). Over WebSocket every method works as over HTTP, plus eth_subscribe /
 * eth_unsubscribe ("newHeads", "logs", …), whose notifications are the
 * provider's own (EDR emits them through EIP-1193's "message" event).
 *
 * Security: like a development node it has no authentication and the chain it
 * serves has unlocked, well-known development accounts, so it binds to a
 * loopback address only and refuses requests and WebSocket upgrades that
 * carry an Origin header (a web page's cross-site request could otherwise send
 * transactions from those accounts); Node and CLI clients send none. The
 * exception is an origin on the `allowedOrigins` list (the devnet's dashboard,
 * and what the operator names with --allow-origin): its requests, preflight
 * (CORS) included, are served, except the methods that use the node's
 * unlocked accounts or change the development chain (crossOriginRefused), so
 * an allowed page reads the chain and may send transactions its own wallet
 * signed (eth_sendRawTransaction), never spend the node's accounts.
 *
 * Limits (options, defaults below): a request body or WebSocket message of
 * 16 MiB, a batch of 1000 requests, and a reply of 32 MiB, a batch's replies
 * counting together; a reply over it becomes a -32005 "response size exceeded"
 * error, so one batch of eth_getLogs cannot build a reply of hundreds of MB.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Eip1193Message, Eip1193MessageEvents, Eip1193Provider } from "./eip1193.ts";
import { createGuardedServer, HttpRequestError } from "../util/guarded-http.ts";
import { listenOnLoopback, LOOPBACK_HOSTS } from "../util/loopback-http.ts";
import { BodyBudget } from "../util/request-body.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";
import { applyCors, checkUpgradeOrigin, type OriginAllowList } from "../util/cors.ts";
import { SerializedResult, SharedProofReplies } from "./shared-proof-replies.ts";

export interface ChainRpcServerOptions {
  /** With "message" events (EIP-1193) eth_subscribe works over WebSocket; without, it is refused. */
  provider: Eip1193Provider & Partial<Eip1193MessageEvents>;
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Largest accepted request body or WebSocket message; default 16 MiB (task specs travel in calldata). */
  maxBodyBytes?: number;
  /** Most requests in one JSON-RPC batch; default 1000 (as Geth). A larger batch is refused whole. */
  maxBatchItems?: number;
  /**
   * Largest reply, in bytes: one request's, and a batch's replies together; default 32 MiB. A reply
   * that does not fit becomes a JSON-RPC error (-32005, "response size exceeded").
   */
  maxResponseBytes?: number;
  /** Web origins whose pages may call this node (CORS); every other Origin is refused. May grow while serving. */
  allowedOrigins?: OriginAllowList;
}

export interface ChainRpcServer {
  /** The JSON-RPC URL over HTTP, e.g. http://127.0.0.1:8545. */
  readonly url: string;
  /** The same API over WebSocket, e.g. ws://127.0.0.1:8545. */
  readonly wsUrl: string;
  readonly port: number;
  /** Closes every WebSocket (their subscriptions end), stops listening and drops open connections; the provider stays open. */
  close(): Promise<void>;
}

export class ChainRpcServerError extends CloisterError<"CHAIN_RPC_SERVER"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("CHAIN_RPC_SERVER", message, options);
  }
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
const DEFAULT_MAX_BATCH_ITEMS = 1000;
const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** How long close() waits for a client to answer a WebSocket close frame before dropping it. */
const CLOSE_GRACE_MS = 1_000;

/** JSON-RPC 2.0 error codes. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INTERNAL_ERROR = -32603;
/** "Limit exceeded", as Infura and other providers answer a reply too large to send. */
const LIMIT_EXCEEDED = -32005;

type JsonRpcId = string | number | null;
interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}
type JsonRpcResponse = { jsonrpc: "2.0"; id: JsonRpcId } & ({ result: unknown } | { error: JsonRpcError });
interface ReplyLimits {
  maxBatchItems: number;
  maxResponseBytes: number;
}
/** Runs one method call: the provider's, or the WebSocket session's own subscription methods. */
type Dispatch = (method: string, params: readonly unknown[] | object | undefined) => Promise<unknown>;

/** A JSON-RPC error the server raises itself (the provider's errors keep their own code). */
class RpcError extends CloisterError<"CHAIN_RPC_REQUEST"> {
  /** The JSON-RPC error code the reply carries. */
  readonly rpcCode: number;
  constructor(rpcCode: number, message: string) {
    super("CHAIN_RPC_REQUEST", message, { details: { rpcCode } });
    this.rpcCode = rpcCode;
  }
}

export async function startChainRpcServer(options: ChainRpcServerOptions): Promise<ChainRpcServer> {
  const { provider, host = "127.0.0.1", port = 0, maxBodyBytes = DEFAULT_MAX_BODY } = options;
  const limits: ReplyLimits = { maxBatchItems: options.maxBatchItems ?? DEFAULT_MAX_BATCH_ITEMS, maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ChainRpcServerError(`${name} must be a positive integer, got ${value}`);
  }
  const bodies = new BodyBudget({ maxBytes: maxBodyBytes });
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new ChainRpcServerError(
      `refusing to serve the chain's JSON-RPC API on ${host}: it has no authentication and unlocked development accounts; bind to 127.0.0.1`,
    );
  }

  const call = providerCall(provider);
  const httpDispatch: Dispatch = (method, params) => {
    if (method === "eth_subscribe" || method === "eth_unsubscribe") {
      return Promise.reject(new RpcError(METHOD_NOT_FOUND, `${method} needs a WebSocket connection (ws://… on this port): HTTP cannot carry notifications`));
    }
    return call(method, params);
  };
  // A page from an allowed origin reads and sends signed transactions; it never uses the node's own accounts.
  const crossOriginDispatch: Dispatch = (method, params) => {
    if (crossOriginRefused(method)) return Promise.reject(new RpcError(METHOD_NOT_FOUND, `${method} is not served to web pages: it would use this node's unlocked accounts or change the development chain; sign with your own wallet and use eth_sendRawTransaction`));
    return httpDispatch(method, params);
  };
  const subscriptions = new Subscriptions(provider);
  const sockets = new WebSocketServer({ noServer: true, maxPayload: maxBodyBytes });
  let closing = false;
  const server = createGuardedServer({
    handle: (req, res) => {
      const origin = applyCors(req, res, options.allowedOrigins, { methods: ["POST"], headers: ["content-type"] });
      if (origin.kind === "preflight") return;
      return handleHttp(origin.kind === "allowed" ? crossOriginDispatch : httpDispatch, bodies, limits, req, res);
    },
    respondError: (res, err) => {
      const status = err instanceof HttpRequestError ? err.status : 500;
      sendJson(res, status, toJson({ jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: err instanceof Error ? err.message : String(err) } }));
    },
    upgrade: (req, socket, head) => {
      if (closing) throw new HttpRequestError(503, "CLOSING", "this node is shutting down; connect again when it is back");
      checkUpgradeOrigin(req, options.allowedOrigins);
      sockets.handleUpgrade(req, socket, head, (ws) => serveWebSocket(ws, call, subscriptions, limits, req.headers.origin !== undefined));
    },
  });

  const listening = await listenOnLoopback(server, host, port, (err) => new ChainRpcServerError(`cannot listen on ${host}:${port}: ${err.message}; pick another port`, { cause: err }));
  return {
    url: listening.url,
    wsUrl: listening.url.replace(/^http:/, "ws:"),
    port: listening.port,
    async close() {
      // Clients reconnect within milliseconds, and the HTTP server finishes closing only once every upgraded
      // socket is gone: refuse upgrades and stop listening first, so the set of clients to close is final,
      // and wait for the chain's unsubscribes only after that.
      closing = true;
      const stopped = listening.close();
      await Promise.all([...sockets.clients].map(closeGracefully));
      sockets.close();
      await stopped;
      await subscriptions.close();
    },
  };
}

/** Methods that rewrite blocks already mined, after which no shared proof answer holds. */
const historyRewriting = new Set(["evm_revert", "hardhat_reset"]);

/** The provider's answers, eth_getProof at a block number shared between callers (shared-proof-replies.ts). */
function providerCall(provider: Eip1193Provider): Dispatch {
  const proofs = new SharedProofReplies(provider);
  return (method, params) => {
    if (method === "eth_getProof") return proofs.request(params) ?? provider.request({ method, params });
    if (!historyRewriting.has(method)) return provider.request({ method, params });
    proofs.forget();
    return provider.request({ method, params }).finally(() => proofs.forget());
  };
}

/** Methods a web page may not call even from an allowed origin: they use the node's unlocked accounts or rewrite the development chain. */
const crossOriginRefusedMethods = new Set(["eth_sendTransaction", "eth_sign", "eth_signTransaction", "eth_signTypedData", "eth_signTypedData_v3", "eth_signTypedData_v4"]);
const crossOriginRefusedPrefixes = ["personal_", "hardhat_", "evm_", "anvil_", "debug_setHead"];

export function crossOriginRefused(method: string): boolean {
  return crossOriginRefusedMethods.has(method) || crossOriginRefusedPrefixes.some((p) => method.startsWith(p));
}

async function handleHttp(dispatch: Dispatch, bodies: BodyBudget, limits: ReplyLimits, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") throw new HttpRequestError(405, "METHOD_NOT_ALLOWED", `${req.method ?? "?"} is not supported: send JSON-RPC requests with POST, or open a WebSocket`);
  const body = await bodies.read(req);
  sendJson(res, 200, await answer(dispatch, body.toString("utf8"), limits));
}

/**
 * The reply (serialized) to one HTTP body or WebSocket message: a single request or a batch, within the
 * limits: a batch over maxBatchItems is refused whole, and a reply that does not fit in what is left of
 * maxResponseBytes is replaced by an error, so no reply holds more than that in memory.
 */
async function answer(dispatch: Dispatch, text: string, limits: ReplyLimits): Promise<string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return toJson({ jsonrpc: "2.0", id: null, error: { code: PARSE_ERROR, message: "the request is not valid JSON" } });
  }
  if (!Array.isArray(parsed)) return fitted(await handleRequest(dispatch, parsed), limits.maxResponseBytes, limits, false);
  if (parsed.length === 0) return toJson({ jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message: "an empty batch is not a request" } });
  if (parsed.length > limits.maxBatchItems) {
    const message = `a batch of ${parsed.length} requests is more than this node's limit of ${limits.maxBatchItems}; send at most ${limits.maxBatchItems} per batch`;
    return toJson({ jsonrpc: "2.0", id: null, error: { code: INVALID_REQUEST, message } });
  }
  // Batch members run in order: a batch may send transactions that depend on each other.
  const replies: string[] = [];
  let bytes = 2; // the brackets
  for (const request of parsed) {
    const reply = fitted(await handleRequest(dispatch, request), limits.maxResponseBytes - bytes, limits, true);
    bytes += Buffer.byteLength(reply) + 1;
    replies.push(reply);
  }
  return `[${replies.join(",")}]`;
}

/** The serialized reply, or a "response size exceeded" error in its place when it is over `room` bytes. */
function fitted(response: JsonRpcResponse, room: number, limits: ReplyLimits, inBatch: boolean): string {
  const reply = toJson(response);
  const size = Buffer.byteLength(reply);
  if (size <= room) return reply;
  const share = inBatch ? ` (a batch's replies count together: ${Math.max(room, 0)} bytes were left)` : "";
  const message = `response size exceeded: the reply is ${size} bytes, over this node's limit of ${limits.maxResponseBytes} bytes per reply${share}; ask for less, e.g. eth_getLogs over a smaller block range`;
  return toJson({ jsonrpc: "2.0", id: response.id, error: { code: LIMIT_EXCEEDED, message } });
}

async function handleRequest(dispatch: Dispatch, request: unknown): Promise<JsonRpcResponse> {
  const r = request as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  const id: JsonRpcId = typeof r?.id === "string" || typeof r?.id === "number" ? r.id : null;
  if (typeof r !== "object" || r === null || r.jsonrpc !== "2.0" || typeof r.method !== "string") {
    return { jsonrpc: "2.0", id, error: { code: INVALID_REQUEST, message: 'a request is {"jsonrpc":"2.0","id":…,"method":"…","params":[…]}' } };
  }
  if (r.params !== undefined && (typeof r.params !== "object" || r.params === null)) {
    return { jsonrpc: "2.0", id, error: { code: INVALID_REQUEST, message: "params must be an array or an object" } };
  }
  try {
    const result = await dispatch(r.method, r.params as readonly unknown[] | object | undefined);
    return { jsonrpc: "2.0", id, result: result ?? null };
  } catch (err) {
    return { jsonrpc: "2.0", id, error: toJsonRpcError(err) };
  }
}

/**
 * One WebSocket client: each message is answered on its own (replies carry the requests' ids, so they
 * may come out of order), and the subscriptions it opened end with it.
 */
function serveWebSocket(ws: WebSocket, call: Dispatch, subscriptions: Subscriptions, limits: ReplyLimits, crossOrigin: boolean): void {
  ws.on("message", (data: RawData) => {
    // A subscription's notifications wait until the reply that names its id has been sent.
    const opened: string[] = [];
    const dispatch: Dispatch = async (method, params) => {
      if (method === "eth_subscribe") {
        const id = await subscriptions.subscribe(ws, params);
        opened.push(id);
        return id;
      }
      if (method === "eth_unsubscribe") return subscriptions.unsubscribe(ws, params);
      if (crossOrigin && crossOriginRefused(method)) throw new RpcError(METHOD_NOT_FOUND, `${method} is not served to web pages: it would use this node's unlocked accounts or change the development chain`);
      return call(method, params);
    };
    answer(dispatch, rawText(data), limits)
      .then((reply) => {
        if (ws.readyState === ws.OPEN) ws.send(reply);
        subscriptions.release(opened);
      })
      // Nothing here is expected to fail; if it does, the client loses this connection, not the process.
      .catch(() => ws.terminate());
  });
  ws.on("close", () => void subscriptions.drop(ws));
  // A broken connection also emits "close", which ends its subscriptions.
  ws.on("error", () => {});
}

/**
 * The provider's subscriptions opened through this server, by id, with the socket that owns each: the
 * provider's notifications go to that socket only, and only it may end them.
 */
class Subscriptions {
  readonly #provider: Eip1193Provider & Partial<Eip1193MessageEvents>;
  readonly #owners = new Map<string, { ws: WebSocket; held: unknown[] | undefined }>();
  /** eth_unsubscribe calls in flight, which close() waits for. */
  readonly #ending = new Set<Promise<void>>();
  readonly #route = (message: Eip1193Message) => {
    if (message.type !== "eth_subscription") return;
    const data = message.data as { subscription?: unknown };
    const owner = typeof data?.subscription === "string" ? this.#owners.get(data.subscription) : undefined;
    if (!owner) return;
    const notification = { jsonrpc: "2.0", method: "eth_subscription", params: data };
    if (owner.held) owner.held.push(notification);
    else send(owner.ws, notification);
  };

  constructor(provider: Eip1193Provider & Partial<Eip1193MessageEvents>) {
    this.#provider = provider;
    provider.on?.("message", this.#route);
  }

  async subscribe(ws: WebSocket, params: readonly unknown[] | object | undefined): Promise<string> {
    if (!this.#provider.on) throw new RpcError(METHOD_NOT_FOUND, "this chain's provider sends no notifications, so eth_subscribe is not available here; poll instead");
    const id = await this.#provider.request({ method: "eth_subscribe", params });
    if (typeof id !== "string") throw new RpcError(INTERNAL_ERROR, `the provider answered eth_subscribe with ${JSON.stringify(id)}, not a subscription id`);
    if (ws.readyState !== ws.OPEN) {
      await this.#end(id);
      throw new RpcError(INTERNAL_ERROR, "the connection closed while subscribing");
    }
    this.#owners.set(id, { ws, held: [] });
    return id;
  }

  /** Sends what the subscriptions got before their ids were known to the client. */
  release(ids: readonly string[]): void {
    for (const id of ids) {
      const owner = this.#owners.get(id);
      if (!owner?.held) continue;
      const held = owner.held;
      owner.held = undefined;
      for (const notification of held) send(owner.ws, notification);
    }
  }

  /** False (as Geth answers) for an id this socket does not own. */
  async unsubscribe(ws: WebSocket, params: readonly unknown[] | object | undefined): Promise<boolean> {
    const id = Array.isArray(params) ? (params as unknown[])[0] : undefined;
    if (typeof id !== "string" || this.#owners.get(id)?.ws !== ws) return false;
    this.#owners.delete(id);
    await this.#end(id);
    return true;
  }

  /** Ends the subscriptions of a closed socket. */
  async drop(ws: WebSocket): Promise<void> {
    const ids = [...this.#owners].filter(([, owner]) => owner.ws === ws).map(([id]) => id);
    for (const id of ids) this.#owners.delete(id);
    await Promise.all(ids.map((id) => this.#end(id)));
  }

  async close(): Promise<void> {
    const ids = [...this.#owners.keys()];
    this.#owners.clear();
    await Promise.all([...ids.map((id) => this.#end(id)), ...this.#ending]);
    this.#provider.removeListener?.("message", this.#route);
  }

  /** The provider may already be closed (the chain stops after its server); its subscriptions end with it then. */
  #end(id: string): Promise<void> {
    const ending = this.#provider.request({ method: "eth_unsubscribe", params: [id] }).then(
      () => {},
      () => {},
    );
    this.#ending.add(ending);
    return ending.finally(() => this.#ending.delete(ending));
  }
}

function closeGracefully(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1001, "the server is closing");
  });
}

/** Keeps the provider's code and revert data, which clients decode into typed contract errors. */
function toJsonRpcError(err: unknown): JsonRpcError {
  const e = err as { code?: unknown; message?: unknown; data?: unknown };
  const code = err instanceof RpcError ? err.rpcCode : typeof e?.code === "number" && Number.isInteger(e.code) ? e.code : INTERNAL_ERROR;
  const message = typeof e?.message === "string" ? e.message : String(err);
  return e?.data === undefined ? { code, message } : { code, message, data: e.data };
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return (Buffer.isBuffer(data) ? data : Buffer.from(data)).toString("utf8");
}

/**
 * A result serialized already (a shared proof answer) goes in as it is. Bigints (rare: EDR answers in JSON
 * already) become hex quantities; the replacer runs only when one is met, since it slows every reply.
 */
function toJson(body: unknown): string {
  const reply = body as { id?: JsonRpcId; result?: unknown } | null;
  if (reply?.result instanceof SerializedResult) return `{"jsonrpc":"2.0","id":${JSON.stringify(reply.id ?? null)},"result":${reply.result.json}}`;
  try {
    return JSON.stringify(body);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return JSON.stringify(body, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v));
  }
}

function send(ws: WebSocket, body: unknown): void {
  if (ws.readyState === ws.OPEN) ws.send(toJson(body));
}

function sendJson(res: ServerResponse, status: number, json: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(json);
}
