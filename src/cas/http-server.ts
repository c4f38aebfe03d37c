/**
 * The attestation service over HTTP, for node daemons in other processes:
 *
 *   POST /challenge   → {"nonce": "0x…"}
 *   POST /register    {signer, hpkePublicKey, provenanceKey, tlsKey, operator, evidenceCid, nonce}
 *                     → {signer, expiry, transactionHash, teeType, simulated, measurement}
 *   GET  /deployment  → {chainId, registry, market, deployBlock} (when given one)
 *
 * Errors are {"error": {code, message, reasons}} with 4xx for a refused
 * request (CasError codes) and 5xx when the service itself failed.
 *
 * Security: registration is gated by the service's own checks (a fresh
 * single-use challenge, evidence fetched from IPFS and verified under the
 * service's policy), not by who calls. The server still binds to loopback
 * only and refuses requests with an Origin header; put an authenticating
 * proxy in front to expose it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { CasError } from "./errors.ts";
import type { AttestationService } from "./service.ts";
import { createGuardedServer, HttpRequestError } from "../util/guarded-http.ts";
import { listenOnLoopback, LOOPBACK_HOSTS } from "../util/loopback-http.ts";
import { BodyBudget } from "../util/request-body.ts";
import { deploymentToJson, type Deployment } from "../chain/deployment.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

export interface CasHttpServerOptions {
  service: Pick<AttestationService, "challenge" | "register">;
  /** Served at GET /deployment so clients can find the contracts. */
  deployment?: Deployment;
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

export interface CasHttpServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export class CasHttpServerError extends CloisterError<"CAS_HTTP_SERVER"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("CAS_HTTP_SERVER", message, options);
  }
}

/** Registration requests are a few hundred bytes. */
const bodies = new BodyBudget({ maxBytes: 64 * 1024 });

const hex = (length?: number) => z.string().regex(length === undefined ? /^0x[0-9a-fA-F]*$/ : new RegExp(`^0x[0-9a-fA-F]{${length}}$`)) as unknown as z.ZodType<`0x${string}`>;

export const registerRequestSchema = z
  .object({ signer: hex(40), hpkePublicKey: hex(64), provenanceKey: hex(182), tlsKey: hex(182), operator: hex(40), evidenceCid: z.string().min(1).max(200), nonce: hex(64) })
  .strict();

export async function startCasHttpServer(options: CasHttpServerOptions): Promise<CasHttpServer> {
  const { service, deployment, host = "127.0.0.1", port = 0 } = options;
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new CasHttpServerError(`refusing to serve the attestation service on ${host}: bind to 127.0.0.1 and put an authenticating proxy in front`);
  }
  // Registrations send transactions from the service's one attester account: one at a time keeps its nonces in order.
  let registrations: Promise<unknown> = Promise.resolve();
  const registerSerially = (request: z.infer<typeof registerRequestSchema>) => {
    const run = registrations.then(() => service.register(request));
    registrations = run.catch(() => undefined);
    return run;
  };

  const routes: Record<string, (req: IncomingMessage) => Promise<unknown>> = {
    "POST /challenge": async () => ({ nonce: await service.challenge() }),
    "POST /register": async (req) => {
      const parsed = registerRequestSchema.safeParse(await readJson(req));
      if (!parsed.success) throw new HttpRequestError(400, "BAD_REQUEST", `malformed registration request: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      const r = await registerSerially(parsed.data);
      return { signer: r.signer, expiry: r.expiry.toString(), transactionHash: r.transactionHash, teeType: r.claims.teeType, simulated: r.claims.simulated, measurement: r.claims.measurement };
    },
    "GET /deployment": async () => {
      if (!deployment) throw new HttpRequestError(404, "NOT_FOUND", "this attestation service does not publish a deployment");
      return deploymentToJson(deployment);
    },
  };

  const server = createGuardedServer({
    handle: async (req, res, { pathname: path }) => {
      if (req.headers.origin !== undefined) throw new HttpRequestError(403, "FORBIDDEN", "cross-origin requests are refused by this service");
      const route = routes[`${req.method ?? ""} ${path}`];
      if (!route) throw new HttpRequestError(404, "NOT_FOUND", `${req.method ?? "?"} ${path} is not an endpoint of the attestation service (POST /challenge, POST /register, GET /deployment)`);
      sendJson(res, 200, await route(req));
    },
    respondError: sendError,
  });

  return listenOnLoopback(server, host, port, (err) => new CasHttpServerError(`cannot listen on ${host}:${port}: ${err.message}; pick another port`, { cause: err }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await bodies.read(req);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpRequestError(400, "BAD_REQUEST", "the request body is not valid JSON");
  }
}

function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpRequestError) {
    sendJson(res, err.status, { error: { code: err.code, message: err.message, reasons: [] } });
  } else if (err instanceof CasError) {
    const status = err.code === "EVIDENCE_UNAVAILABLE" ? 502 : 400;
    sendJson(res, status, { error: { code: err.code, message: err.message, reasons: err.reasons } });
  } else {
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e?.code === "string" ? e.code : "INTERNAL";
    sendJson(res, 500, { error: { code, message: typeof e?.message === "string" ? e.message : String(err), reasons: [] } });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
