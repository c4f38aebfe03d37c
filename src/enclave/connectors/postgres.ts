import pg from "pg";
import type { PostgresDescriptor } from "./descriptor.ts";
import { CloisterError } from "../../util/base-error.ts";
import { ConnectorError } from "./errors.ts";
import { redactUrl, safeCause, urlSecrets } from "./redact.ts";
import { batchSizeOf } from "./reader.ts";
import { baseSelect, cursorIndexOf, incrementalSelect, sourceName } from "./sql.ts";
import type { Cell, Column, ColumnType, ConnectorNetwork, RawRead, ReadOptions, Row } from "./types.ts";

/**
 * PostgreSQL through `pg`. Values come back as PostgreSQL's text form (no pg
 * type parsers) and are mapped by type OID; rows stream through a server-side
 * cursor (DECLARE / FETCH in a read-only transaction), so memory stays at one
 * batch.
 */

const typeByOid: Record<number, ColumnType> = {
  16: "boolean",
  20: "integer",
  21: "integer",
  23: "integer",
  26: "integer",
  700: "float",
  701: "float",
  1700: "decimal",
  17: "bytes",
  114: "json",
  3802: "json",
  1082: "date",
  1114: "timestamp",
  1184: "timestamp",
};

const rawText = { getTypeParser: () => (value: string) => value };

function toCell(text: string | null, type: ColumnType): Cell {
  if (text === null) return null;
  switch (type) {
    case "boolean":
      return text === "t";
    case "integer":
      return BigInt(text);
    case "float":
      return Number(text);
    case "bytes":
      return new Uint8Array(Buffer.from(text.slice(2), "hex"));
    default:
      return text;
  }
}

/** pg's settings for `url`: its own socket, or a pinned TLS stream through the enclave's relay. */
export function postgresClientConfig(url: string, network: ConnectorNetwork | undefined): pg.ClientConfig {
  if (!network) return { connectionString: url, connectionTimeoutMillis: 10_000 };
  const parsed = new URL(url);
  return {
    ...network.net.postgres({ host: parsed.hostname, port: Number(parsed.port || 5432), pin: network.pin }),
    user: decodeURIComponent(parsed.username) || undefined,
    password: decodeURIComponent(parsed.password) || undefined,
    database: decodeURIComponent(parsed.pathname.slice(1)) || undefined,
    connectionTimeoutMillis: 30_000,
  };
}

const quoteIdent = (part: string) => `"${part.replaceAll('"', '""')}"`;

/** Maps a pg error to what the user must fix; the password never appears. */
export function postgresError(error: unknown, descriptor: { url: string; table?: string | undefined; query?: string | undefined; cursor?: string | undefined }, phase: "connect" | "query"): CloisterError {
  // Ours, or the enclave network's (a pin mismatch, a refused TLS upgrade): already typed and saying what to fix.
  if (error instanceof CloisterError) return error;
  const secrets = urlSecrets(descriptor.url);
  const cause = safeCause(error, secrets);
  const code = (error as { code?: string }).code;
  const url = redactUrl(descriptor.url);
  const details = { url, ...(code ? { driverCode: code } : {}) };
  if (phase === "connect" && (code === undefined || ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN"].includes(code))) {
    return new ConnectorError("CONNECTOR_UNREACHABLE", `PostgreSQL at ${url} is unreachable (${cause.message}); check that the server runs and the url's host and port`, { details, cause });
  }
  if (code === "28P01" || code === "28000") return new ConnectorError("CONNECTOR_AUTH_FAILED", `PostgreSQL at ${url} refused the credentials; check the url's user and password`, { details, cause });
  if (code === "3D000") return new ConnectorError("CONNECTOR_UNREACHABLE", `PostgreSQL at ${url}: the url's database does not exist`, { details, cause });
  if (code === "42P01") return new ConnectorError("CONNECTOR_UNKNOWN_TABLE", descriptor.table !== undefined ? `PostgreSQL at ${url} has no table ${descriptor.table}; check the descriptor's table (schema.table)` : `the descriptor's query names a table PostgreSQL at ${url} does not have (${cause.message}); check the query`, { details: { ...details, ...(descriptor.table ? { table: descriptor.table } : {}) }, cause });
  if (code?.startsWith("22")) return new ConnectorError("CONNECTOR_BAD_CURSOR", `the cursor value does not fit column "${descriptor.cursor}" at ${url}; pass the cursor a previous read returned`, { details, cause });
  return new ConnectorError("CONNECTOR_QUERY_FAILED", `PostgreSQL at ${url} failed reading ${sourceName(descriptor)}: ${cause.message}`, { details, cause });
}

export async function openPostgres(descriptor: PostgresDescriptor, options: ReadOptions): Promise<RawRead> {
  if (options.after !== undefined && descriptor.cursor === undefined) {
    throw new ConnectorError("CONNECTOR_BAD_CURSOR", "a read after a cursor value needs the descriptor's cursor column");
  }
  const batchSize = batchSizeOf(options);
  const client = new pg.Client(postgresClientConfig(descriptor.url, options.network));
  client.on("error", () => {
    // a dropped connection surfaces as the failing query's error; the event must not crash the enclave
  });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw postgresError(error, descriptor, "connect");
  }
  let open = true;
  const close = async (): Promise<void> => {
    if (!open) return;
    open = false;
    await client.end().catch(() => undefined);
  };
  try {
    const select = baseSelect(descriptor, quoteIdent);
    const probe = await client.query({ text: `SELECT * FROM (${select}) AS cloister_probe LIMIT 0`, rowMode: "array", types: rawText });
    const columns: Column[] = probe.fields.map((f) => ({ name: f.name, type: typeByOid[f.dataTypeID] ?? "text" }));
    const cursorIndex = cursorIndexOf(descriptor, columns);
    const sql = descriptor.cursor === undefined ? select : incrementalSelect(select, descriptor.cursor, quoteIdent, options.after === undefined ? undefined : client.escapeLiteral(options.after));
    await client.query("BEGIN READ ONLY");
    await client.query(`DECLARE cloister_read NO SCROLL CURSOR FOR ${sql}`);
    const types = columns.map((c) => c.type);
    async function* batches(): AsyncGenerator<readonly Row[]> {
      try {
        for (;;) {
          const result = await client.query<(string | null)[]>({ text: `FETCH FORWARD ${batchSize} FROM cloister_read`, rowMode: "array", types: rawText });
          if (result.rows.length === 0) break;
          yield result.rows.map((row) => row.map((text, i) => toCell(text, types[i]!)));
        }
        await client.query("COMMIT");
      } catch (error) {
        throw postgresError(error, descriptor, "query");
      } finally {
        await close();
      }
    }
    return { columns, cursorIndex, batches: batches(), close };
  } catch (error) {
    await close();
    throw postgresError(error, descriptor, "query");
  }
}
