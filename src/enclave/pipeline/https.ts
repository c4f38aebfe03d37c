/**
 * `https` (JSON) sources and destinations. A source GETs `url` and takes a
 * JSON array of row objects (with a cursor: `after=<last cursor>` is added to
 * the query, and only rows whose cursor field is greater are kept, so a
 * server that ignores the parameter still gives an incremental read). A
 * destination POSTs `{ runId, rows }` with an `Idempotency-Key: <runId>`
 * header: the run marker of an https destination is the receiver's, which
 * must not apply a key twice (docs/pipelines.md).
 *
 * TLS: with `pin` (hex SHA-256 of the server certificate's DER) the server
 * must present exactly that certificate (a self-signed one is fine); without
 * it the usual CA validation applies. Inside an enclave with its network
 * (src/enclave/net) the connection goes through the host's relay and TLS
 * terminates in the enclave; without it (tests, the demo) it is a direct
 * socket with the same pin check.
 */
import { createHash } from "node:crypto";
import type * as http from "node:http";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { z } from "zod";
import { DatasetDigest } from "../connectors/digest.ts";
import { cellFromJson, jsonCell } from "../connectors/json-cell.ts";
import { ConnectorError } from "../connectors/errors.ts";
import { redactUrl } from "../connectors/redact.ts";
import type { Column, ColumnType, DatasetReader, Row } from "../connectors/types.ts";
import type { RunMarker, WriteSummary } from "../connectors/write.ts";
import type { EnclaveNet } from "../net/connect.ts";

const httpsUrl = z.string().refine((u) => {
  try {
    return new URL(u).protocol === "https:";
  } catch {
    return false;
  }
}, "must be an https:// URL");
const pin = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be the hex SHA-256 of the server certificate's DER").optional();
export const httpsSourceSchema = z.strictObject({ type: z.literal("https"), url: httpsUrl, cursor: z.string().min(1).optional(), pin, headers: z.record(z.string(), z.string()).optional() });
export const httpsDestinationSchema = z.strictObject({ type: z.literal("https"), url: httpsUrl, mode: z.literal("append"), pin, headers: z.record(z.string(), z.string()).optional() });
export type HttpsSource = z.infer<typeof httpsSourceSchema>;
export type HttpsDestination = z.infer<typeof httpsDestinationSchema>;

export const isHttps = (d: { type: string }): boolean => d.type === "https";

function parse<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `bad https ${what}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(descriptor)"}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

interface Exchange {
  status: number;
  body: Uint8Array;
}

async function request(url: URL, method: "GET" | "POST", headers: Record<string, string>, body: Uint8Array | undefined, pinHex: string | undefined, net: EnclaveNet | undefined): Promise<Exchange> {
  const port = Number(url.port || 443);
  const where = redactUrl(url.toString());
  let socket: Duplex | undefined;
  if (net) {
    if (!pinHex) throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `https through the enclave network needs "pin" (the server certificate's SHA-256) for ${where}`);
    socket = (await net.connect({ host: url.hostname, port, pin: { kind: "certificate", sha256: pinHex } })).socket;
  }
  const headerMap = { accept: "application/json", ...headers, ...(body ? { "content-type": "application/json", "content-length": String(body.length) } : {}) };
  if (socket) {
    try {
      return await exchangeOver(socket, method, url, headerMap, body);
    } catch (error) {
      throw error instanceof ConnectorError ? error : new ConnectorError("CONNECTOR_UNREACHABLE", `could not reach ${where}: ${(error as Error).message}; check the url and that the server is up`, { cause: error });
    }
  }
  return new Promise<Exchange>((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: new Uint8Array(Buffer.concat(chunks)) }));
      res.on("error", reject);
    };
    const req = https.request(
      { method, host: url.hostname, port, path: url.pathname + url.search, headers: headerMap, agent: false, rejectUnauthorized: pinHex === undefined, minVersion: "TLSv1.2" },
      onResponse,
    );
    if (pinHex) {
      req.on("socket", (s) => {
        s.on("secureConnect", () => {
          const cert = (s as TLSSocket).getPeerX509Certificate();
          const seen = cert ? createHash("sha256").update(cert.raw).digest("hex") : "";
          if (seen !== pinHex.toLowerCase()) req.destroy(new ConnectorError("CONNECTOR_UNREACHABLE", `${where} presented a certificate other than the pinned one; check the descriptor's pin`));
        });
      });
    }
    req.on("error", (error) =>
      reject(error instanceof ConnectorError ? error : new ConnectorError("CONNECTOR_UNREACHABLE", `could not reach ${where}: ${error.message}; check the url and that the server is up`, { cause: error })),
    );
    req.end(body);
  });
}

/**
 * One HTTP/1.1 exchange over an already-open (TLS) stream, `Connection: close`: the request, then the whole
 * response until the server closes; the body by Content-Length, chunked transfer coding, or to the end.
 */
async function exchangeOver(socket: Duplex, method: string, url: URL, headers: Record<string, string>, body: Uint8Array | undefined): Promise<Exchange> {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""];
  socket.write(Buffer.concat([Buffer.from(lines.join("\r\n")), Buffer.from(body ?? new Uint8Array(0))]));
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(Buffer.from(chunk as Uint8Array));
  const raw = Buffer.concat(chunks);
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("the server closed the connection before a complete response head");
  const head = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1] ?? 0);
  const fields = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as const));
  let rest = raw.subarray(end + 4);
  if (/chunked/i.test(fields.get("transfer-encoding") ?? "")) {
    const parts: Buffer[] = [];
    for (;;) {
      const nl = rest.indexOf("\r\n");
      const size = parseInt(rest.subarray(0, nl).toString("latin1"), 16);
      if (!Number.isFinite(size) || nl < 0) throw new Error("malformed chunked response");
      if (size === 0) break;
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    return { status, body: new Uint8Array(Buffer.concat(parts)) };
  }
  const length = fields.get("content-length");
  return { status, body: new Uint8Array(length === undefined ? rest : rest.subarray(0, Number(length))) };
}

function typeOf(records: Record<string, unknown>[], name: string): ColumnType {
  const v = records.find((r) => r[name] !== null && r[name] !== undefined)?.[name];
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return records.every((r) => r[name] == null || Number.isInteger(r[name])) ? "integer" : "float";
  if (typeof v === "object") return "json";
  return "text";
}

/** Reads the JSON array at the source url into a DatasetReader (one batch). */
export async function openHttpsSource(raw: unknown, options: { after?: string | undefined; net?: EnclaveNet | undefined }): Promise<DatasetReader> {
  const src = parse(httpsSourceSchema, raw, "source");
  const url = new URL(src.url);
  if (src.cursor && options.after !== undefined) url.searchParams.set("after", options.after);
  const res = await request(url, "GET", src.headers ?? {}, undefined, src.pin, options.net);
  if (res.status !== 200) throw new ConnectorError("CONNECTOR_QUERY_FAILED", `GET ${redactUrl(src.url)} answered ${res.status}; the source must answer 200 with a JSON array of row objects`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(res.body));
  } catch (cause) {
    throw new ConnectorError("CONNECTOR_QUERY_FAILED", `GET ${redactUrl(src.url)} did not return JSON`, { cause });
  }
  if (!Array.isArray(json) || json.some((r) => typeof r !== "object" || r === null || Array.isArray(r))) throw new ConnectorError("CONNECTOR_QUERY_FAILED", `GET ${redactUrl(src.url)} must return a JSON array of row objects`);
  let records = json as Record<string, unknown>[];
  const names = [...new Set(records.flatMap((r) => Object.keys(r)))];
  const columns: Column[] = names.map((name) => ({ name, type: typeOf(records, name) }));
  let cursorIndex: number | undefined;
  if (src.cursor) {
    cursorIndex = names.indexOf(src.cursor);
    if (cursorIndex < 0 && records.length > 0) throw new ConnectorError("CONNECTOR_CURSOR_COLUMN_MISSING", `cursor field "${src.cursor}" is not in the rows of ${redactUrl(src.url)}`);
    const numeric = columns[cursorIndex]?.type === "integer" || columns[cursorIndex]?.type === "float";
    const key = (v: unknown) => (numeric ? Number(v) : String(v));
    records = records.filter((r) => r[src.cursor!] != null && (options.after === undefined || key(r[src.cursor!]) > key(options.after)));
    records.sort((a, b) => (key(a[src.cursor!]) < key(b[src.cursor!]) ? -1 : key(a[src.cursor!]) > key(b[src.cursor!]) ? 1 : 0));
  }
  const rows: Row[] = records.map((r) => columns.map((c) => cellFromJson(r[c.name], c.type)));
  const digest = new DatasetDigest(columns);
  const types = columns.map((c) => c.type);
  for (const row of rows) digest.addRow(row, types);
  const last = cursorIndex !== undefined && rows.length > 0 ? rows.at(-1)![cursorIndex] : undefined;
  const cursor = src.cursor ? (last !== undefined && last !== null ? String(last) : options.after) : undefined;
  let done = false;
  return {
    columns,
    async *[Symbol.asyncIterator]() {
      if (rows.length > 0) yield rows;
      done = true;
    },
    summary() {
      if (!done) throw new ConnectorError("CONNECTOR_NOT_FINISHED", "the dataset summary exists only after every batch was read");
      return { columns, rowCount: rows.length, digest: digest.digest(), cursor };
    },
    close: async () => undefined,
  };
}

/** POSTs the rows as one JSON document with the run id as idempotency key. */
export async function writeHttpsRows(raw: unknown, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>, marker: RunMarker, net: EnclaveNet | undefined): Promise<WriteSummary> {
  const dest = parse(httpsDestinationSchema, raw, "destination");
  const digest = new DatasetDigest(columns);
  const types = columns.map((c) => c.type);
  const rows: Record<string, unknown>[] = [];
  for await (const batch of batches) {
    for (const row of batch) {
      digest.addRow(row, types);
      rows.push(Object.fromEntries(columns.map((c, i) => [c.name, jsonCell(row[i]!)])));
    }
  }
  const written = { rowCount: rows.length, digest: digest.digest() };
  marker.record(written);
  const body = new TextEncoder().encode(JSON.stringify({ runId: marker.runId, rows }));
  const res = await request(new URL(dest.url), "POST", { ...dest.headers, "idempotency-key": marker.runId }, body, dest.pin, net);
  if (res.status < 200 || res.status >= 300) throw new ConnectorError("CONNECTOR_QUERY_FAILED", `POST ${redactUrl(dest.url)} answered ${res.status}; the destination must accept { runId, rows } with a 2xx`);
  return { ...written, created: false };
}
