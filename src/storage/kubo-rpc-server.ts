/**
 * A minimal Kubo RPC API over the embedded Helia store, so every process of a
 * multi-process devnet reaches one IPFS node through the standard API and the
 * same client code (kubo-store.ts) works against a real Kubo node.
 *
 * Implemented subset (all POST, as in Kubo):
 *   /api/v0/add      multipart files → NDJSON {Name, Hash, Size} per file, in
 *                    part order;
 *                    only Cloister's import profile (CIDv1, raw leaves,
 *                    size-262144, sha2-256), other settings are refused
 *   /api/v0/cat      arg=<cid | /ipfs/cid>, offset, length
 *   /api/v0/pin/ls   arg=<cid>: recursive pin of a blob put here, or an error
 *   /api/v0/version
 *
 * Security: the API has no authentication, like Kubo's, so it binds to a
 * loopback address only, and refuses requests that carry an Origin header
 * (a web page's cross-site POST); Node clients send none.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage, StorageError } from "./blob-store.ts";
import type { HeliaStore } from "./helia-store.ts";
import { MultipartError, parseMultipart, type ParsedPart } from "./multipart.ts";
import { CHUNK_SIZE, KUBO_CHUNKER } from "./unixfs-profile.ts";
import { createGuardedServer, HttpRequestError } from "../util/guarded-http.ts";
import { listenOnLoopback, LOOPBACK_HOSTS } from "../util/loopback-http.ts";
import { BodyBudget } from "../util/request-body.ts";

export interface KuboRpcServerOptions {
  store: HeliaStore;
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Largest accepted add request body; default 256 MiB. */
  maxUploadBytes?: number;
  /**
   * Most bytes of request bodies the server buffers at once, over all requests; a request that would
   * pass it is refused with 503. Default 512 MiB (or maxUploadBytes, when larger).
   */
  maxUploadBytesInFlight?: number;
}

export interface KuboRpcServer {
  /** Base URL to give a Kubo RPC client, e.g. http://127.0.0.1:5001. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections; the store stays open. */
  close(): Promise<void>;
}

const DEFAULT_MAX_UPLOAD = 256 * 1024 * 1024;
const DEFAULT_MAX_UPLOAD_IN_FLIGHT = 512 * 1024 * 1024;

class RpcError extends HttpRequestError {
  constructor(status: number, message: string) {
    super(status, "IPFS_RPC", message);
  }
}

export async function startKuboRpcServer(options: KuboRpcServerOptions): Promise<KuboRpcServer> {
  const { store, host = "127.0.0.1", port = 0, maxUploadBytes = DEFAULT_MAX_UPLOAD } = options;
  const maxUploadBytesInFlight = options.maxUploadBytesInFlight ?? Math.max(DEFAULT_MAX_UPLOAD_IN_FLIGHT, maxUploadBytes);
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new StorageError(
      "STORAGE_FAILED",
      `Refusing to serve the IPFS RPC API on ${host}: it has no authentication. Bind to 127.0.0.1 and put an authenticating proxy in front if other machines need it.`,
    );
  }
  // Every endpoint that takes a body reads it through this one budget.
  const bodies = new BodyBudget({ maxBytes: maxUploadBytes, maxBytesInFlight: maxUploadBytesInFlight });
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>> = {
    "/api/v0/add": (req, res, query) => handleAdd(store, bodies, req, res, query),
    "/api/v0/cat": (_req, res, query) => handleCat(store, res, query),
    "/api/v0/pin/ls": (_req, res, query) => handlePinLs(store, res, query),
    "/api/v0/version": async (_req, res) =>
      sendJson(res, 200, {
        Version: "cloister-embedded",
        Commit: "",
        Repo: "",
        System: `${process.arch}/${process.platform}`,
        Golang: "",
      }),
  };

  const server = createGuardedServer({
    handle: async (req, res, url) => {
      const route = routes[url.pathname];
      if (req.headers.origin !== undefined) throw new RpcError(403, "Cross-origin requests are refused by this node.");
      if (route === undefined) throw new RpcError(404, `${url.pathname} is not supported by Cloister's embedded IPFS node (add, cat, pin/ls, version are).`);
      if (req.method !== "POST") throw new RpcError(405, `${req.method} ${url.pathname}: the Kubo RPC API takes POST only.`);
      await route(req, res, url.searchParams);
    },
    respondError: sendError,
  });

  return listenOnLoopback(server, host, port, (err) => new StorageError("STORAGE_FAILED", `Cannot listen on ${host}:${port}: ${err.message}. Pick another port.`, { cause: err }));
}

async function handleAdd(
  store: HeliaStore,
  bodies: BodyBudget,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
): Promise<void> {
  assertImportProfile(query);
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw new RpcError(400, "add expects a multipart/form-data body with one part per file.");
  }
  const body = await bodies.read(req, "add request");
  let parts: ParsedPart[];
  try {
    parts = parseMultipart(body, contentType);
  } catch (err) {
    if (!(err instanceof MultipartError)) throw err;
    throw new RpcError(400, `The add request body is not valid multipart/form-data: ${err.message}.`);
  }
  // Every part is checked before any is stored, so a malformed request stores nothing.
  for (const part of parts) {
    if (part.filename === undefined) {
      throw new RpcError(400, `Part "${part.field}" has no filename parameter; send every file as a file part.`);
    }
    if (part.contentType === "application/x-directory") {
      throw new RpcError(400, "Directories are not supported by this node; add each file on its own.");
    }
  }
  if (parts.length === 0) throw new RpcError(400, "The add request holds no file part.");
  const added = await store.addMany(parts.map((part) => part.bytes));
  // As Kubo without wrap-with-directory: one line per file, in part order,
  // named by the part's filename (or its CID when the filename is empty).
  const lines = added.map(({ cid, dagSize }, i) => {
    const filename = parts[i]?.filename ?? "";
    const name = filename === "" ? cid : decodeName(filename);
    return JSON.stringify({ Name: name, Hash: cid, Size: dagSize.toString() });
  });
  res.writeHead(200, { "content-type": "application/json", "x-chunked-output": "1" });
  res.end(lines.map((line) => `${line}\n`).join(""));
}

/** Refuses import settings that would give CIDs other than the profile's. */
function assertImportProfile(query: URLSearchParams): void {
  const expect = (name: string, allowed: string[], why: string): void => {
    const value = query.get(name);
    if (value !== null && !allowed.includes(value)) {
      throw new RpcError(400, `${name}=${value} is not supported: ${why}.`);
    }
  };
  const cidVersion = query.get("cid-version");
  if (cidVersion !== "1") {
    throw new RpcError(400, `cid-version=${cidVersion ?? "(unset, meaning 0)"} is not supported: this node stores CIDv1 blobs only; pass cid-version=1.`);
  }
  expect("raw-leaves", ["true"], "leaves are always raw blocks");
  expect("chunker", [KUBO_CHUNKER], `blobs are chunked into ${CHUNK_SIZE}-byte blocks`);
  expect("hash", ["sha2-256"], "blocks are hashed with sha2-256");
  for (const flag of ["trickle", "only-hash", "wrap-with-directory", "inline", "nocopy", "raw"]) {
    expect(flag, ["false"], "this node supports plain file adds only");
  }
}

async function handleCat(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const arg = query.get("arg");
  if (arg === null) throw new RpcError(400, "cat needs arg=<cid>.");
  const cid = arg.startsWith("/ipfs/") ? arg.slice("/ipfs/".length) : arg;
  if (cid.includes("/")) throw new RpcError(400, `${arg}: paths inside a blob are not supported; pass the blob's CID.`);
  const abort = new AbortController();
  // Only a client gone before the end stops the read: aborting after a complete response cost a DOMException per cat.
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  const chunks = store.cat(cid, { offset: optionalInt(query, "offset"), length: optionalInt(query, "length"), signal: abort.signal })[Symbol.asyncIterator]();
  // Read the first chunk before the headers, so a missing or invalid blob
  // still gets a proper error response.
  let next = await chunks.next();
  res.writeHead(200, { "content-type": "text/plain", "x-stream-output": "1" });
  try {
    while (next.done !== true) {
      if (!res.write(next.value)) await new Promise((resolve) => res.once("drain", resolve));
      next = await chunks.next();
    }
    res.end();
  } catch (err) {
    // The status is sent already: cut the connection so the client sees a
    // failed read, never a short blob that looks complete.
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

async function handlePinLs(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = query.getAll("arg");
  if (args.length === 0) throw new RpcError(400, "pin/ls needs arg=<cid>; listing every pin is not supported.");
  const type = query.get("type") ?? "all";
  if (!["all", "recursive"].includes(type)) throw new RpcError(400, `pin/ls type=${type}: blobs are pinned recursively only.`);
  const lines: string[] = [];
  for (const arg of args) {
    const cid = arg.startsWith("/ipfs/") ? arg.slice("/ipfs/".length) : arg;
    if (!(await store.has(cid))) throw new RpcError(500, `path '${arg}' is not pinned`);
    lines.push(JSON.stringify({ Cid: cid, Type: "recursive", Name: "" }));
  }
  res.writeHead(200, { "content-type": "application/json", "x-chunked-output": "1" });
  res.end(lines.map((line) => `${line}\n`).join(""));
}

function optionalInt(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new RpcError(400, `${name}=${value} must be a non-negative integer.`);
  return n;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Kubo's error shape: {Message, Code, Type: "error"}. */
function sendError(res: ServerResponse, err: unknown): void {
  let status = 500;
  let message = errorMessage(err);
  if (err instanceof HttpRequestError) status = err.status;
  if (err instanceof StorageError) {
    if (err.code === "INVALID_CID") status = 400;
    // Prefixed with the code so kubo-store.ts rebuilds the same typed error.
    message = `${err.code}: ${err.message}`;
  }
  sendJson(res, status, { Message: message, Code: status === 500 ? 0 : 1, Type: "error" });
}
