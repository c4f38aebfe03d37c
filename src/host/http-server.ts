/**
 * The node's operations endpoint: GET /healthz for liveness probes and GET
 * /metrics for Prometheus. It binds to 127.0.0.1 by default: it reveals no
 * secrets (only ids, block numbers and counters) but has no authentication,
 * so exposing it further is the operator's choice.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createGuardedServer, HttpRequestError } from "../util/guarded-http.ts";
import { listenOnLoopback } from "../util/loopback-http.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

export interface NodeHealth {
  /** "ok" answers 200; "unavailable" answers 503 with `reason`. */
  status: "ok" | "unavailable";
  reason?: string;
  enclave: { signer: string; simulated: boolean; up: boolean };
  /** Last block whose events the node has fully handled (decimal string); null before the first crawl. */
  checkpointBlock: string | null;
  /** Milliseconds since the crawler last succeeded; null before its first success. */
  lastCrawlAgeMs: number | null;
  /** The enclave's registration (node-daemon.ts: registrationHealth). */
  registration: RegistrationHealth;
}

export interface RegistrationHealth {
  /** attesting | registered | renewing | expired | revoked (attestation-lifecycle.ts). */
  state: string;
  /** The registry's expiry (Unix seconds, decimal string); null before the first registration. */
  expiry: string | null;
  /** Chain time the registration was last checked against (decimal string), and the seconds from it to the expiry. */
  chainTime: string | null;
  secondsToExpiry: number | null;
  /** Failed attestation attempts since the last success, and the last one's error. */
  failures: number;
  lastError?: string;
}

export interface NodeHttpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  health: () => NodeHealth;
  metrics: { render(): string | Promise<string> };
}

export interface NodeHttpServer {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export class HttpServerError extends CloisterError<"HTTP_SERVER"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("HTTP_SERVER", message, options);
  }
}

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store", ...extra });
  res.end(body);
}

async function route(options: NodeHttpServerOptions, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (path !== "/healthz" && path !== "/metrics") {
    send(res, 404, "application/json", JSON.stringify({ error: `no route ${path}; try /healthz or /metrics` }));
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, "application/json", JSON.stringify({ error: `${path} only answers GET` }), { allow: "GET, HEAD" });
    return;
  }
  if (path === "/metrics") {
    send(res, 200, prometheusContentType, await options.metrics.render());
    return;
  }
  const health = options.health();
  send(res, health.status === "ok" ? 200 : 503, "application/json", JSON.stringify(health));
}

export async function startNodeHttpServer(options: NodeHttpServerOptions): Promise<NodeHttpServer> {
  const host = options.host ?? "127.0.0.1";
  const server = createGuardedServer({
    handle: (req, res, url) => route(options, req, res, url.pathname),
    respondError: (res, error) => send(res, error instanceof HttpRequestError ? error.status : 500, "application/json", JSON.stringify({ error: error instanceof Error ? error.message : String(error) })),
  });
  return listenOnLoopback(server, host, options.port, (err) => new HttpServerError(`cannot listen on ${host}:${options.port}: ${err.message}; pick another port with http.port`, { cause: err }));
}
