/**
 * The one way Cloister's HTTP services take requests: a server whose handlers
 * cannot throw into the process. Every service of a devnet shares one process,
 * so a single request that escaped its handler (a request target Node's parser
 * accepts and WHATWG URL rejects, a header a handler misreads, a failure after
 * the response has started) used to stop the whole network.
 *
 * Here the request target is parsed inside the error boundary, every error,
 * sync or async, reaches the service's own error responder, an error after the
 * response has started cuts the connection (so the client sees a failed
 * response, never a short one), and requests Node's parser refuses (oversized
 * headers, broken request lines) get a plain-text reason instead of an empty
 * 400.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { CloisterError } from "./base-error.ts";

/** A request refused with an HTTP status; services map it into their own error format. */
export class HttpRequestError extends CloisterError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message, { details: { status } });
    this.status = status;
  }
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;
/** Writes the service's error response; called only while no part of the response has been sent. */
export type ErrorResponder = (res: ServerResponse, err: unknown) => void;

export interface GuardedServerOptions {
  handle: RequestHandler;
  respondError: ErrorResponder;
  /** WebSocket (or other) upgrades; without it an upgrade request is an ordinary request. */
  upgrade?: UpgradeHandler;
}

/** Longest request target quoted back in an error message. */
const QUOTED_TARGET_CHARS = 100;

export function createGuardedServer(options: GuardedServerOptions): Server {
  const { handle, respondError, upgrade } = options;
  const server = createServer((req, res) => void serve(req, res));

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A write to a client that is gone must not become an unhandled "error" event.
    res.on("error", () => {});
    try {
      await handle(req, res, requestUrl(req));
    } catch (err) {
      fail(req, res, err);
    }
  }

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A refused body left unread would otherwise be drained to keep the connection: close it instead.
    if (!req.complete) res.setHeader("connection", "close");
    try {
      respondError(res, err);
    } catch {
      res.destroy();
    }
  }

  if (upgrade) {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => {});
      try {
        upgrade(req, socket, head, requestUrl(req));
      } catch (err) {
        const status = err instanceof HttpRequestError ? err.status : 500;
        refuseRaw(socket, status, err instanceof Error ? err.message : String(err));
      }
    });
  }

  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A response already under way on this connection cannot be followed by another status line.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    if (err.code === "HPE_HEADER_OVERFLOW") refuseRaw(socket, 431, "the request's headers are larger than this server accepts; send fewer or shorter headers");
    else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") refuseRaw(socket, 408, "the request did not arrive in time");
    else refuseRaw(socket, 400, `the request is not valid HTTP/1.1 (${err.code ?? "parse error"})`);
  });
  return server;
}

/** The request target as a URL; a target that is not an origin-form path is refused with 400. */
function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? "/";
  const refuse = () =>
    new HttpRequestError(400, "BAD_REQUEST_TARGET", `the request target ${JSON.stringify(target.slice(0, QUOTED_TARGET_CHARS))} is not a valid path; send a path such as "/"`);
  if (!target.startsWith("/") || target.startsWith("//")) throw refuse();
  try {
    return new URL(target, "http://localhost");
  } catch {
    throw refuse();
  }
}

const REASONS: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable" };

/** A response written straight to a socket that has no ServerResponse (a refused upgrade or unparsable request). */
function refuseRaw(socket: Duplex, status: number, message: string): void {
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n\r\n${message}\n`);
}
