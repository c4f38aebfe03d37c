/**
 * The dashboard's HTTP server: serves the web bundle (web/dist), the page's
 * configuration (GET /config.json: the chain, WebSocket and IPFS URLs, the
 * deployment or why it is unusable, the policy), and a small read-only API
 * the page cannot do itself:
 *
 *   GET /api/enclaves              each registered enclave's evidence, verified under the policy
 *   GET /api/provenance?task=<id>  a completed task's provenance record, verified
 *   GET /api/provenance?pipeline=<id>&run=<n>, ?collaboration=<id>&run=<n>, ?grant=<id>&use=<n>
 *                                  a pipeline run's, a clean-room run's, a grant use's, verified
 *   GET /api/nodes                 the nodes' /healthz and /metrics (they serve localhost only, without CORS)
 *
 * Everything else the page reads itself, in the browser, from the chain
 * (viem) and IPFS. It binds to loopback only; it holds no key. Its pages
 * load nothing from elsewhere: a Content-Security-Policy allows only this
 * server, the chain and the IPFS API.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import type { Manifest } from "../attestation/manifest/index.ts";
import { chainDefinition, createReaderClient } from "../chain/clients.ts";
import { openKuboStore } from "../storage/kubo-store.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { createGuardedServer, HttpRequestError } from "../util/guarded-http.ts";
import { listenOnLoopback } from "../util/loopback-http.ts";
import { DashboardChecks, RUN_KINDS, type ProvenanceVerdictJson, type RunKind } from "./dashboard-checks.ts";
import { ensureDashboardBundle } from "./dashboard-bundle.ts";
import type { DashboardDeployment } from "./dashboard-deployment.ts";
import { DevnetError } from "./errors.ts";

export interface DashboardServerOptions {
  rpcUrl: string;
  wsUrl?: string;
  ipfsUrl: string;
  /** The deployment to show; without it, `deploymentProblem` says why (the page shows it as its error state). */
  deployment?: DashboardDeployment;
  deploymentProblem?: string;
  /** Where the deployment came from, named on the page. */
  deploymentSource?: string;
  /** The policy manifest evidence and provenance are verified against (its task role); without it nothing is verified. */
  manifest?: Manifest;
  /** Base URLs of node health endpoints (GET /healthz, /metrics) to relay. */
  nodeUrls?: string[];
  /** Default 127.0.0.1; a loopback address. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The built web app; default: web/dist, built when missing or stale. */
  webRoot?: string;
  onStep?: (message: string) => void;
}

export interface DashboardServer {
  /** e.g. http://127.0.0.1:8550/ */
  readonly url: string;
  readonly port: number;
  /** The origins a browser sends from this server's pages: the chain and IPFS must allow them. */
  readonly origins: string[];
  close(): Promise<void>;
}

const NODE_TIMEOUT_MS = 3_000;

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".ico": "image/x-icon",
};

export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const host = options.host ?? "127.0.0.1";
  const webRoot = options.webRoot ?? (await ensureDashboardBundle({ onStep: options.onStep }));
  const d = options.deployment;
  let store: BlobStore | undefined;
  const checks =
    d && options.manifest
      ? (() => {
          store = openKuboStore(options.ipfsUrl);
          const chainId = d.chainId ?? 31337;
          const reader = createReaderClient({ endpoint: { rpcUrl: options.rpcUrl }, chain: chainDefinition(chainId, options.rpcUrl) });
          return new DashboardChecks({
            reader,
            store,
            registry: d.registry,
            market: d.market,
            fromBlock: BigInt(d.deployBlock),
            manifest: options.manifest!,
            ...(d.pipelines ? { pipelines: d.pipelines } : {}),
            ...(d.collaborations ? { collaborations: d.collaborations } : {}),
            ...(d.grants ? { grants: d.grants } : {}),
          });
        })()
      : undefined;
  const nodeUrls = options.nodeUrls ?? [];
  const config = {
    rpcUrl: options.rpcUrl,
    ...(options.wsUrl ? { wsUrl: options.wsUrl } : {}),
    ipfsUrl: options.ipfsUrl,
    deployment: d ?? null,
    ...(options.deploymentProblem ? { deploymentProblem: options.deploymentProblem } : {}),
    ...(options.deploymentSource ? { deploymentSource: options.deploymentSource } : {}),
    policy: checks ? { name: checks.policyName, digest: checks.policyDigest, allowSimulation: options.manifest!.attestation.allowSimulation } : null,
    nodeCount: nodeUrls.length,
  };
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${[options.rpcUrl, options.wsUrl, options.ipfsUrl].flatMap((u) => (u ? [`${new URL(u).protocol}//${new URL(u).host}`] : [])).join(" ")}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");

  const server = createGuardedServer({
    handle: async (req, res, url) => {
      if (req.method !== "GET" && req.method !== "HEAD") throw new HttpRequestError(405, "METHOD_NOT_ALLOWED", "the dashboard is read-only: GET only");
      if (url.pathname === "/config.json") return sendJson(res, 200, config);
      if (url.pathname === "/api/enclaves") {
        if (!checks) throw new HttpRequestError(404, "NO_POLICY", "this dashboard verifies nothing: it was started without a policy manifest or deployment");
        return sendJson(res, 200, { policy: checks.policyName, enclaves: await checks.enclaves() });
      }
      if (url.pathname === "/api/provenance") {
        if (!checks) throw new HttpRequestError(404, "NO_POLICY", "this dashboard verifies nothing: it was started without a policy manifest or deployment");
        return sendJson(res, 200, await provenanceOf(checks, url.searchParams));
      }
      if (url.pathname === "/api/nodes") return sendJson(res, 200, { nodes: await Promise.all(nodeUrls.map((u, i) => nodeReport(i, u))) });
      if (url.pathname.startsWith("/api/")) throw new HttpRequestError(404, "NOT_FOUND", `no API ${url.pathname}`);
      return serveStatic(webRoot, url.pathname, req, res, csp);
    },
    respondError: (res, err) => sendJson(res, err instanceof HttpRequestError ? err.status : 500, { error: err instanceof Error ? err.message : String(err) }),
  });
  const listening = await listenOnLoopback(server, host, options.port ?? 0, (err) => new DevnetError(`the dashboard cannot listen on ${host}:${options.port ?? 0}: ${err.message}; pick another port`, { cause: err }));
  const origins = [listening.url, ...(host === "127.0.0.1" ? [`http://localhost:${listening.port}`] : [])];
  return {
    url: `${listening.url}/`,
    port: listening.port,
    origins,
    async close() {
      await listening.close();
      await store?.close();
    },
  };
}

const ID = /^(0x[0-9a-fA-F]{1,64}|\d{1,78})$/;
const ORDINAL = /^[1-9]\d{0,9}$/;

/** GET /api/provenance: exactly one of task=<id>, pipeline=<id>&run=<n>, collaboration=<id>&run=<n>, grant=<id>&use=<n>. */
async function provenanceOf(checks: DashboardChecks, params: URLSearchParams): Promise<ProvenanceVerdictJson> {
  const named = (["task", ...(Object.keys(RUN_KINDS) as RunKind[])] as const).filter((k) => params.has(k));
  if (named.length !== 1) throw new HttpRequestError(400, "BAD_QUERY", "name one job: task=<id>, pipeline=<id>&run=<n>, collaboration=<id>&run=<n> or grant=<id>&use=<n>");
  const kind = named[0]!;
  const id = params.get(kind)!;
  if (!ID.test(id)) throw new HttpRequestError(400, kind === "task" ? "BAD_TASK" : "BAD_ID", `'${id}' is not a ${kind} id (a decimal or 0x number)`);
  if (kind === "task") {
    const verdict = await checks.provenance(BigInt(id));
    if (!verdict) throw new HttpRequestError(404, "NOT_COMPLETED", `task ${id} has no completion on the market`);
    return verdict;
  }
  const what = kind === "grant" ? "use" : "run";
  const n = params.get(what) ?? "";
  if (!ORDINAL.test(n)) throw new HttpRequestError(400, "BAD_RUN", `${kind}=<id> needs ${what}=<n>, a whole number from 1; got '${n}'`);
  if (!checks.verifies(kind)) throw new HttpRequestError(404, "NOT_DEPLOYED", `this dashboard's deployment names no ${RUN_KINDS[kind]} contract`);
  const verdict = await checks.run(kind, BigInt(id), Number(n));
  if (!verdict) throw new HttpRequestError(404, "NO_SUCH_RUN", `the chain records no ${what} ${n} of ${kind} ${id}`);
  return verdict;
}

async function serveStatic(root: string, pathname: string, req: IncomingMessage, res: ServerResponse, csp: string): Promise<void> {
  let relative: string;
  try {
    relative = normalize(decodeURIComponent(pathname === "/" ? "/index.html" : pathname));
  } catch {
    throw new HttpRequestError(400, "BAD_PATH", "the path is not valid URL encoding");
  }
  const file = join(root, relative);
  if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) throw new HttpRequestError(404, "NOT_FOUND", "no such file");
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new HttpRequestError(404, "NOT_FOUND", `no file ${pathname}`);
  const body = await readFile(file);
  res.writeHead(200, {
    "content-type": contentTypes[extname(file)] ?? "application/octet-stream",
    "content-length": body.length,
    "cache-control": relative.startsWith(`${sep}assets${sep}`) ? "public, max-age=31536000, immutable" : "no-cache",
    "content-security-policy": csp,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff" });
  res.end(JSON.stringify(body, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

/** One node's health and metrics; an unreachable node is a report with its error, not a failed request. */
async function nodeReport(index: number, url: string): Promise<Record<string, unknown>> {
  const base = url.replace(/\/+$/, "");
  try {
    const [health, metrics] = await Promise.all([
      fetch(`${base}/healthz`, { signal: AbortSignal.timeout(NODE_TIMEOUT_MS) }).then(async (r) => ({ status: r.status, body: (await r.json()) as unknown })),
      fetch(`${base}/metrics`, { signal: AbortSignal.timeout(NODE_TIMEOUT_MS) }).then((r) => (r.ok ? r.text() : undefined)),
    ]);
    return { index, url: base, ok: health.status === 200, health: health.body, ...(metrics ? { metrics: parsePrometheus(metrics) } : {}) };
  } catch (error) {
    return { index, url: base, ok: false, error: `${base} does not answer: ${(error as Error).message}` };
  }
}

/** Prometheus text format, samples only: `name value` and `name{labels} value`. */
export function parsePrometheus(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
