/**
 * The HTTP side of the Kubo RPC API, on node:http with a keep-alive agent:
 * POST requests (multipart.ts builds the bodies of adds), and the three ways a Kubo node
 * reports an error:
 *
 * - before any output: a non-2xx status with `{"Message","Code","Type":"error"}`
 *   (older nodes: a text/plain message);
 * - in an NDJSON stream (add, pin/ls): a line that is such an error object;
 * - after a streamed body has begun (cat): an `X-Stream-Error` trailer, the
 *   body ending early but cleanly.
 *
 * Errors are KuboApiError (the node answered with an error) or
 * KuboConnectionError (no answer, or the connection broke off); kubo-store.ts
 * turns them into StorageErrors.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { multipartBody, type FilePart } from "./multipart.ts";
import { CloisterError } from "../util/base-error.ts";

/** The node answered, with an error. */
export class KuboApiError extends CloisterError<"KUBO_API"> {
  /** HTTP status; 200 for an error reported inside a successful response. */
  readonly status: number;
  constructor(status: number, message: string) {
    super("KUBO_API", message, { details: { status } });
    this.status = status;
  }
}

/** The node could not be reached, or the connection ended before the response did. */
export class KuboConnectionError extends CloisterError<"KUBO_CONNECTION"> {
  /** True when the response had begun: the node stopped or failed while sending. */
  readonly brokeOff: boolean;
  constructor(brokeOff: boolean, cause: unknown) {
    super("KUBO_CONNECTION", cause instanceof Error ? cause.message : String(cause), { cause, details: { brokeOff } });
    this.brokeOff = brokeOff;
  }
}

export interface PostOptions {
  /** Sent as a multipart/form-data body, one file part each. */
  files?: readonly FilePart[];
  signal?: AbortSignal;
}

export interface KuboHttp {
  /**
   * POSTs to /api/v0/<command>. Resolves with the response once its status
   * is known to be 2xx; a non-2xx answer rejects with KuboApiError.
   */
  post(command: string, query: URLSearchParams, options?: PostOptions): Promise<IncomingMessage>;
  /** Closes every connection, ending requests still under way. */
  close(): void;
}

const STREAM_ERROR_TRAILER = "x-stream-error";
/** Enough for any error message; a larger error body is cut. */
const MAX_ERROR_BODY = 64 * 1024;

/** Throws TypeError when apiUrl is not an http(s) URL. */
export function openKuboHttp(apiUrl: string, maxSockets: number): KuboHttp {
  const url = new URL(apiUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`unsupported protocol ${url.protocol}`);
  const transport = url.protocol === "https:" ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets });
  const basePath = `${url.pathname === "/" ? "/api/v0" : url.pathname.replace(/\/$/, "")}/`;

  const send = (path: string, options: PostOptions): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const body = options.files === undefined ? undefined : multipartBody(options.files);
      const req = transport.request(
        {
          agent,
          protocol: url.protocol,
          hostname: url.hostname.replace(/^\[|\]$/g, ""),
          port: url.port,
          path,
          method: "POST",
          signal: options.signal,
          headers:
            body === undefined
              ? { "content-length": 0 }
              : { "content-type": body.contentType, "content-length": body.length },
        },
        resolve,
      );
      req.on("error", (err) => reject(isAbort(err) ? err : new RequestError(err, req.reusedSocket)));
      for (const chunk of body?.chunks ?? []) req.write(chunk);
      req.end();
    });

  return {
    async post(command, query, options = {}) {
      const path = `${basePath}${command}?${query.toString()}`;
      let res: IncomingMessage;
      try {
        res = await send(path, options);
      } catch (err) {
        // A kept-alive connection the node closed while it was idle: every
        // command used here is idempotent, so it is sent once more, afresh.
        if (!(err instanceof RequestError)) throw err;
        if (!err.reusedSocket) throw new KuboConnectionError(false, err.cause);
        try {
          res = await send(path, options);
        } catch (retryErr) {
          throw retryErr instanceof RequestError ? new KuboConnectionError(false, retryErr.cause) : retryErr;
        }
      }
      const { signal } = options;
      if (signal !== undefined) {
        // Aborting also ends a body being read, as an AbortError rather than a broken connection.
        const abort = (): void => void res.destroy(new DOMException("The operation was aborted.", "AbortError"));
        if (signal.aborted) abort();
        signal.addEventListener("abort", abort, { once: true });
        res.once("close", () => signal.removeEventListener("abort", abort));
      }
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) throw await errorResponse(res, status);
      return res;
    },
    close() {
      agent.destroy();
    },
  };
}

class RequestError extends CloisterError<"KUBO_REQUEST"> {
  readonly reusedSocket: boolean;
  constructor(cause: Error, reusedSocket: boolean) {
    super("KUBO_REQUEST", cause.message, { cause });
    this.reusedSocket = reusedSocket;
  }
}

/**
 * The body's chunks as they arrive. Throws KuboApiError when the body ends
 * with an X-Stream-Error trailer, KuboConnectionError when it is cut off.
 */
export async function* bodyChunks(res: IncomingMessage): AsyncIterable<Uint8Array> {
  try {
    // Plain Uint8Array views, so callers get what the BlobStore interface promises.
    for await (const chunk of res as AsyncIterable<Buffer>) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new KuboConnectionError(true, err);
  }
  const streamError = res.trailers[STREAM_ERROR_TRAILER];
  if (streamError !== undefined && streamError !== "") throw new KuboApiError(res.statusCode ?? 200, streamError);
}

/** Every value of an NDJSON response; an error object in the stream throws KuboApiError. */
export async function ndjsonValues(res: IncomingMessage): Promise<unknown[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of bodyChunks(res)) chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  const values: unknown[] = [];
  for (const line of Buffer.concat(chunks).toString("utf8").split("\n")) {
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new KuboApiError(res.statusCode ?? 200, `the response holds a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const message = errorObjectMessage(value);
    if (message !== undefined) throw new KuboApiError(res.statusCode ?? 200, message);
    values.push(value);
  }
  return values;
}

async function errorResponse(res: IncomingMessage, status: number): Promise<Error> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (total < MAX_ERROR_BODY) chunks.push(chunk);
      total += chunk.byteLength;
    }
  } catch (err) {
    if (isAbort(err)) return err as Error;
    return new KuboConnectionError(true, err);
  }
  const text = Buffer.concat(chunks).toString("utf8").slice(0, MAX_ERROR_BODY).trim();
  let message: string | undefined;
  if ((res.headers["content-type"] ?? "").startsWith("application/json")) {
    try {
      message = messageOf(JSON.parse(text));
    } catch {
      // Not JSON after all: the text itself is the best message there is.
    }
  }
  return new KuboApiError(status, message ?? (text === "" ? `HTTP status ${status}` : text));
}

/** The Message of a value that is a Kubo error object (`Type: "error"`), else undefined. */
function errorObjectMessage(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || (value as { Type?: unknown }).Type !== "error") return undefined;
  return messageOf(value) ?? "unspecified error";
}

function messageOf(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { Message, message } = value as { Message?: unknown; message?: unknown };
  return typeof Message === "string" ? Message : typeof message === "string" ? message : undefined;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}
