import mysql from "mysql2";
import type { ConnectionOptions, FieldPacket } from "mysql2";
import type { MysqlDescriptor } from "./descriptor.ts";
import { CloisterError } from "../../util/base-error.ts";
import { ConnectorError } from "./errors.ts";
import { redactUrl, safeCause, urlSecrets } from "./redact.ts";
import { batchSizeOf } from "./reader.ts";
import { baseSelect, cursorIndexOf, incrementalSelect, sourceName } from "./sql.ts";
import type { Cell, Column, ColumnType, ConnectorNetwork, RawRead, ReadOptions, Row } from "./types.ts";

/**
 * MySQL and MariaDB through `mysql2`: big integers and decimals as exact
 * strings, dates as the server's text, rows streamed (the driver's query
 * stream, paused between batches by async iteration).
 */

const BINARY_CHARSET = 63;

function columnType(field: FieldPacket): ColumnType {
  switch (field.columnType) {
    case 1: // TINY
      return field.columnLength === 1 ? "boolean" : "integer";
    case 2: // SHORT
    case 3: // LONG
    case 8: // LONGLONG
    case 9: // INT24
    case 13: // YEAR
      return "integer";
    case 4: // FLOAT
    case 5: // DOUBLE
      return "float";
    case 0: // DECIMAL
    case 246: // NEWDECIMAL
      return "decimal";
    case 10: // DATE
    case 14: // NEWDATE
      return "date";
    case 7: // TIMESTAMP
    case 12: // DATETIME
      return "timestamp";
    case 245: // JSON (MySQL; MariaDB's JSON is LONGTEXT)
      return "json";
    case 249:
    case 250:
    case 251:
    case 252:
    case 253:
    case 254:
      return field.characterSet === BINARY_CHARSET ? "bytes" : "text";
    default:
      return "text";
  }
}

function toCell(value: unknown, type: ColumnType): Cell {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "boolean":
      return Number(value) !== 0;
    case "integer":
      return BigInt(value as string | number);
    case "float":
      return Number(value);
    case "bytes":
      return new Uint8Array(value as Buffer);
    case "json":
      return typeof value === "string" ? value : JSON.stringify(value);
    default:
      return value instanceof Buffer ? value.toString("utf8") : String(value);
  }
}

const quoteIdent = (part: string) => `\`${part.replaceAll("`", "``")}\``;

export function mysqlError(error: unknown, descriptor: { url: string; table?: string | undefined; query?: string | undefined; cursor?: string | undefined }, phase: "connect" | "query"): CloisterError {
  // Ours, or the enclave network's (a pin mismatch, a server without TLS): already typed and saying what to fix.
  if (error instanceof CloisterError) return error;
  const cause = safeCause(error, urlSecrets(descriptor.url));
  const code = (error as { code?: string }).code;
  const url = redactUrl(descriptor.url);
  const details = { url, ...(code ? { driverCode: code } : {}) };
  if (phase === "connect" && (code === undefined || ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "PROTOCOL_CONNECTION_LOST"].includes(code))) {
    return new ConnectorError("CONNECTOR_UNREACHABLE", `MySQL/MariaDB at ${url} is unreachable (${cause.message}); check that the server runs and the url's host and port`, { details, cause });
  }
  if (code === "ER_ACCESS_DENIED_ERROR" || code === "ER_DBACCESS_DENIED_ERROR") return new ConnectorError("CONNECTOR_AUTH_FAILED", `MySQL/MariaDB at ${url} refused the credentials; check the url's user and password`, { details, cause });
  if (code === "ER_BAD_DB_ERROR") return new ConnectorError("CONNECTOR_UNREACHABLE", `MySQL/MariaDB at ${url}: the url's database does not exist`, { details, cause });
  if (code === "ER_NO_SUCH_TABLE") return new ConnectorError("CONNECTOR_UNKNOWN_TABLE", descriptor.table !== undefined ? `MySQL/MariaDB at ${url} has no table ${descriptor.table}; check the descriptor's table` : `the descriptor's query names a table MySQL/MariaDB at ${url} does not have (${cause.message}); check the query`, { details: { ...details, ...(descriptor.table ? { table: descriptor.table } : {}) }, cause });
  return new ConnectorError("CONNECTOR_QUERY_FAILED", `MySQL/MariaDB at ${url} failed reading ${sourceName(descriptor)}: ${cause.message}`, { details, cause });
}

/**
 * mysql2's settings for `url` (mysql:// or mariadb://): its own socket, or a
 * pinned TLS stream through the enclave's relay (host and port from the url).
 */
export function mysqlConnectionConfig(url: string, network: ConnectorNetwork | undefined): ConnectionOptions {
  const uri = url.startsWith("mariadb:") ? `mysql:${url.slice("mariadb:".length)}` : url;
  if (!network) return { uri, connectTimeout: 10_000 };
  const parsed = new URL(uri);
  return { uri, ...network.net.mysql({ host: parsed.hostname, port: Number(parsed.port || 3306), pin: network.pin }), connectTimeout: 30_000 };
}

export async function openMysql(descriptor: MysqlDescriptor, options: ReadOptions): Promise<RawRead> {
  if (options.after !== undefined && descriptor.cursor === undefined) {
    throw new ConnectorError("CONNECTOR_BAD_CURSOR", "a read after a cursor value needs the descriptor's cursor column");
  }
  const batchSize = batchSizeOf(options);
  const connection = mysql.createConnection({ ...mysqlConnectionConfig(descriptor.url, options.network), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, decimalNumbers: false, rowsAsArray: true });
  connection.on("error", () => {
    // surfaces as the failing query's error; the event must not crash the enclave
  });
  try {
    await connection.promise().connect();
  } catch (error) {
    connection.destroy();
    throw mysqlError(error, descriptor, "connect");
  }
  let open = true;
  const close = async (): Promise<void> => {
    if (!open) return;
    open = false;
    await connection.promise().end().catch(() => connection.destroy());
  };
  try {
    const select = baseSelect(descriptor, quoteIdent);
    const [, fields] = await connection.promise().query({ sql: `SELECT * FROM (${select}) AS cloister_probe LIMIT 0`, rowsAsArray: true });
    const columns: Column[] = (fields ?? []).map((f) => ({ name: f.name, type: columnType(f) }));
    const cursorIndex = cursorIndexOf(descriptor, columns);
    const sql = descriptor.cursor === undefined ? select : incrementalSelect(select, descriptor.cursor, quoteIdent, options.after === undefined ? undefined : connection.escape(options.after));
    const types = columns.map((c) => c.type);
    const stream = connection.query({ sql, rowsAsArray: true }).stream({ highWaterMark: batchSize });
    async function* batches(): AsyncGenerator<readonly Row[]> {
      let batch: Row[] = [];
      try {
        for await (const row of stream as AsyncIterable<unknown[]>) {
          batch.push(row.map((value, i) => toCell(value, types[i]!)));
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
        if (batch.length > 0) yield batch;
      } catch (error) {
        throw mysqlError(error, descriptor, "query");
      } finally {
        stream.destroy();
        await close();
      }
    }
    return { columns, cursorIndex, batches: batches(), close };
  } catch (error) {
    await close();
    throw mysqlError(error, descriptor, "query");
  }
}
