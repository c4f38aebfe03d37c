/**
 * The Kubo RPC API over the embedded Helia store, so every process of a
 * multi-process devnet reaches one IPFS node through the standard API, and
 * Kubo's own clients (kubo-rpc-client, the ipfs CLI's --api) and Cloister's
 * (kubo-store.ts) work against it as against a Kubo node started offline.
 *
 * Served (all POST, as in Kubo; README "The embedded IPFS node" has the table):
 *   id, version, repo/stat, config, config/show     kubo-rpc-node.ts
 *   add                                              kubo-rpc-add.ts
 *   cat, get, ls, files/stat                         kubo-rpc-files.ts
 *   block/get|put|stat|rm, dag/get, refs, pin/add|rm|ls   kubo-rpc-dag.ts
 * Networking commands (swarm, dht, routing, ping, pubsub...) answer Kubo's
 * offline error; any other path 404.
 *
 * Security: the API has no authentication, like Kubo's, so it binds to a
 * loopback address only, and refuses requests that carry an Origin header
 * (a web page's cross-site POST); Node clients send none. Origins on the
 * `allowedOrigins` list (the devnet's dashboard, --allow-origin) may read:
 * a page from one gets the read commands (crossOriginCommands), preflight
 * included; adding, removing and pinning stay with Node clients.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { StorageError } from "./blob-store.ts";
import type { HeliaStore } from "./helia-store.ts";
import { handleAdd } from "./kubo-rpc-add.ts";
import { handleBlockGet, handleBlockPut, handleBlockRm, handleBlockStat, handleDagGet, handlePinAdd, handlePinLs, handlePinRm, handleRefs } from "./kubo-rpc-dag.ts";
import { handleCat, handleFilesStat, handleGet, handleLs } from "./kubo-rpc-files.ts";
import { handleConfig, handleConfigShow, handleId, handleRepoStat, handleVersion, isNetworkCommand, newIdentity, OFFLINE_MESSAGE } from "./kubo-rpc-node.ts";
import { RpcError, sendError } from "./kubo-rpc-response.ts";
import { applyCors, type OriginAllowList } from "../util/cors.ts";
import { createGuardedServer } from "../util/guarded-http.ts";
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
  /** Web origins whose pages may read through this API (CORS); every other Origin is refused. May grow while serving. */
  allowedOrigins?: OriginAllowList;
}

/** What a page from an allowed origin may call: reads only. */
export const crossOriginCommands: ReadonlySet<string> = new Set(["id", "version", "repo/stat", "cat", "ls", "files/stat", "block/get", "block/stat", "dag/get", "refs", "pin/ls"]);

export interface KuboRpcServer {
  /** Base URL to give a Kubo RPC client, e.g. http://127.0.0.1:5001. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections; the store stays open. */
  close(): Promise<void>;
}

const DEFAULT_MAX_UPLOAD = 256 * 1024 * 1024;
const DEFAULT_MAX_UPLOAD_IN_FLIGHT = 512 * 1024 * 1024;

type Route = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void> | void;

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
  const identity = newIdentity();
  // Known once listening; id and config answer with it.
  let apiAddress = "";
  const config = (): Record<string, unknown> => ({
    "Addresses.API": apiAddress,
    "Addresses.Gateway": "",
    "Addresses.Swarm": [],
    "Identity.PeerID": identity.id,
    "Datastore.Path": store.dir,
  });
  const { node } = store;
  const routes: Record<string, Route> = {
    "/api/v0/id": (_req, res, query) => handleId(res, query, identity, apiAddress),
    "/api/v0/version": (_req, res) => handleVersion(res),
    "/api/v0/repo/stat": (_req, res, query) => handleRepoStat(store, res, query),
    "/api/v0/config": (_req, res, query) => handleConfig(res, query, config()),
    "/api/v0/config/show": (_req, res) => handleConfigShow(res, config()),
    "/api/v0/add": (req, res, query) => handleAdd(store, bodies, req, res, query),
    "/api/v0/cat": (_req, res, query) => handleCat(store, res, query),
    "/api/v0/get": (_req, res, query) => handleGet(store, res, query),
    "/api/v0/ls": (_req, res, query) => handleLs(store, res, query),
    "/api/v0/files/stat": (_req, res, query) => handleFilesStat(store, res, query),
    "/api/v0/block/get": (_req, res, query) => handleBlockGet(node, res, query),
    "/api/v0/block/put": (req, res, query) => handleBlockPut(node, bodies, req, res, query),
    "/api/v0/block/stat": (_req, res, query) => handleBlockStat(node, res, query),
    "/api/v0/block/rm": (_req, res, query) => handleBlockRm(node, res, query),
    "/api/v0/dag/get": (_req, res, query) => handleDagGet(node, res, query),
    "/api/v0/refs": (_req, res, query) => handleRefs(node, res, query),
    "/api/v0/pin/add": (_req, res, query) => handlePinAdd(node, res, query),
    "/api/v0/pin/rm": (_req, res, query) => handlePinRm(node, res, query),
    "/api/v0/pin/ls": (_req, res, query) => handlePinLs(node, res, query),
  };
  const offline: Route = () => {
    throw new RpcError(500, OFFLINE_MESSAGE);
  };

  const server = createGuardedServer({
    handle: async (req, res, url) => {
      const command = url.pathname.startsWith("/api/v0/") ? url.pathname.slice("/api/v0/".length) : undefined;
      const route = routes[url.pathname] ?? (command !== undefined && isNetworkCommand(command) ? offline : undefined);
      const origin = applyCors(req, res, options.allowedOrigins, { methods: ["POST"], headers: ["content-type"] });
      if (origin.kind === "preflight") return;
      if (origin.kind === "allowed" && (command === undefined || !crossOriginCommands.has(command))) {
        throw new RpcError(403, `${url.pathname} is not served to web pages; they may call ${[...crossOriginCommands].join(", ")}.`);
      }
      if (route === undefined) throw new RpcError(404, `${url.pathname} is not served by Cloister's embedded IPFS node; see the README's table of the commands it serves.`);
      if (req.method !== "POST") throw new RpcError(405, `${req.method} ${url.pathname}: the Kubo RPC API takes POST only.`);
      await route(req, res, url.searchParams);
    },
    respondError: sendError,
  });

  const listening = await listenOnLoopback(server, host, port, (err) => new StorageError("STORAGE_FAILED", `Cannot listen on ${host}:${port}: ${err.message}. Pick another port.`, { cause: err }));
  apiAddress = `/${host.includes(":") ? "ip6" : "ip4"}/${host === "localhost" ? "127.0.0.1" : host}/tcp/${listening.port}`;
  return listening;
}
