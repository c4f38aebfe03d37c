/**
 * The wire side of Cloister's Kubo RPC server: request errors, Kubo's error
 * shape, and the JSON and newline-delimited JSON answers its commands give.
 */
import type { ServerResponse } from "node:http";
import { errorMessage, StorageError } from "./blob-store.ts";
import { HttpRequestError } from "../util/guarded-http.ts";

/** A request refused with an HTTP status; 400 is Kubo's client error (Code 1), 500 its other errors (Code 0). */
export class RpcError extends HttpRequestError {
  constructor(status: number, message: string) {
    super(status, "IPFS_RPC", message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A stream of JSON values, one a line, as Kubo answers add, pin/ls, refs and block/rm. */
export function sendNdjson(res: ServerResponse, values: readonly unknown[]): void {
  res.writeHead(200, { "content-type": "application/json", "x-chunked-output": "1" });
  res.end(values.map((value) => `${JSON.stringify(value)}\n`).join(""));
}

/** Kubo's error shape: {Message, Code, Type: "error"}. */
export function sendError(res: ServerResponse, err: unknown): void {
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

/** A boolean option as Kubo reads it: absent gives the default, "true"/"false" (or a bare flag) the value. */
export function flag(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const value = query.get(name);
  if (value === null) return fallback;
  if (value === "" || value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new RpcError(400, `${name}=${value} is not a boolean; pass true or false.`);
}

/** The arg parameters of a command that needs at least one. */
export function requiredArgs(query: URLSearchParams, command: string, what: string): string[] {
  const args = query.getAll("arg");
  if (args.length === 0) throw new RpcError(400, `${command} needs arg=<${what}>.`);
  return args;
}

/** A non-negative integer option, or undefined when absent. */
export function optionalInt(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new RpcError(400, `${name}=${value} must be a non-negative integer.`);
  return n;
}

/** A signal that aborts when the client goes away before the response is complete. */
export function abortOnClose(res: ServerResponse): AbortController {
  const abort = new AbortController();
  // Only a client gone before the end stops the read: aborting after a complete response cost a DOMException per cat.
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort;
}

/**
 * Streams a body as Kubo streams cat and get. The first chunk is read before
 * the headers, so a missing or invalid DAG still gets a proper error
 * response; a failure after that cuts the connection, so the client sees a
 * failed read, never a short body that looks complete.
 */
export async function streamBody(res: ServerResponse, body: AsyncIterable<Uint8Array>, headers: Record<string, string>): Promise<void> {
  const chunks = body[Symbol.asyncIterator]();
  let next = await chunks.next();
  res.writeHead(200, { ...headers, "x-stream-output": "1" });
  try {
    while (next.done !== true) {
      if (!res.write(next.value)) await new Promise((resolve) => res.once("drain", resolve));
      next = await chunks.next();
    }
    res.end();
  } catch (err) {
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}
