/**
 * Which web pages may call a local service from a browser: an explicit
 * allow-list of origins (scheme://host:port, as a browser sends them in the
 * Origin header), no wildcard. A request without an Origin header (Node and
 * CLI clients, curl) is not a browser's cross-origin request and passes; one
 * whose origin is not on the list is refused with 403, preflight included.
 *
 * The list may grow while the service runs (add()): a devnet starts its
 * chain and IPFS servers before it knows the port its dashboard gets.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CloisterError } from "./base-error.ts";
import { HttpRequestError } from "./guarded-http.ts";

export class OriginAllowListError extends CloisterError<"ORIGIN_INVALID"> {
  constructor(message: string) {
    super("ORIGIN_INVALID", message);
  }
}

/** The normalized origin of an http(s) URL or origin string; throws on anything else. */
export function normalizeOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OriginAllowListError(`'${value}' is not an origin: give scheme, host and port, e.g. http://127.0.0.1:8548`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new OriginAllowListError(`'${value}' is not an http(s) origin`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw new OriginAllowListError(`'${value}' has a path, query or credentials; an origin is only scheme://host:port`);
  }
  return url.origin;
}

export class OriginAllowList {
  readonly #origins = new Set<string>();

  constructor(origins: Iterable<string> = []) {
    for (const origin of origins) this.add(origin);
  }

  /** Allows an origin from now on; an http(s) URL with no path. */
  add(origin: string): void {
    this.#origins.add(normalizeOrigin(origin));
  }

  has(origin: string): boolean {
    return this.#origins.has(origin);
  }

  get origins(): string[] {
    return [...this.#origins];
  }
}

/** What a service should do with a request, as far as its origin goes. */
export type OriginVerdict = { kind: "same-site" } | { kind: "allowed"; origin: string } | { kind: "preflight"; origin: string };

const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Checks the request's Origin against the list: throws a 403 HttpRequestError for an origin not on it;
 * answers an allowed preflight (OPTIONS with Access-Control-Request-Method) itself and returns
 * "preflight" (the caller has nothing more to do); for an allowed request, sets the response's CORS
 * headers and returns "allowed". `methods` and `headers` are what the service accepts cross-origin.
 */
export function applyCors(
  req: IncomingMessage,
  res: ServerResponse,
  allowList: OriginAllowList | undefined,
  accepts: { methods: readonly string[]; headers: readonly string[] },
): OriginVerdict {
  const origin = req.headers.origin;
  if (origin === undefined) return { kind: "same-site" };
  if (!allowList?.has(origin)) {
    throw new HttpRequestError(403, "FORBIDDEN", `cross-origin requests from ${JSON.stringify(origin)} are refused by this node; start it with that origin on its allow-list (--allow-origin) to let that page in`);
  }
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("vary", "Origin");
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
    const method = String(req.headers["access-control-request-method"]).toUpperCase();
    if (!accepts.methods.includes(method)) {
      throw new HttpRequestError(403, "FORBIDDEN", `${method} is not accepted cross-origin; this node takes ${accepts.methods.join(", ")}`);
    }
    const asked = String(req.headers["access-control-request-headers"] ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== "");
    const refused = asked.filter((h) => !accepts.headers.includes(h));
    if (refused.length > 0) throw new HttpRequestError(403, "FORBIDDEN", `request header(s) ${refused.join(", ")} are not accepted cross-origin; this node takes ${accepts.headers.join(", ")}`);
    res.writeHead(204, {
      "access-control-allow-methods": accepts.methods.join(", "),
      "access-control-allow-headers": accepts.headers.join(", "),
      "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
    });
    res.end();
    return { kind: "preflight", origin };
  }
  return { kind: "allowed", origin };
}

/** For a WebSocket upgrade: throws 403 unless the request has no Origin or an allowed one. */
export function checkUpgradeOrigin(req: IncomingMessage, allowList: OriginAllowList | undefined): void {
  const origin = req.headers.origin;
  if (origin !== undefined && !allowList?.has(origin)) {
    throw new HttpRequestError(403, "FORBIDDEN", `cross-origin requests from ${JSON.stringify(origin)} are refused by this node`);
  }
}
