import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { DuckDBInstance, DuckDBTypeId, DuckDBBlobValue, type DuckDBResult, type DuckDBType, type DuckDBValue } from "@duckdb/node-api";
import type { FileDescriptor } from "./descriptor.ts";
import { ConnectorError } from "./errors.ts";
import { batchSizeOf, columnIndex } from "./reader.ts";
import type { Cell, Column, ColumnType, RawRead, ReadOptions, Row } from "./types.ts";

/** csv and parquet files, read by DuckDB's read_csv / read_parquet in an in-memory database. */

const integerIds = new Set([DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.BIGINT, DuckDBTypeId.UTINYINT, DuckDBTypeId.USMALLINT, DuckDBTypeId.UINTEGER, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);
const timestampIds = new Set([DuckDBTypeId.TIMESTAMP, DuckDBTypeId.TIMESTAMP_S, DuckDBTypeId.TIMESTAMP_MS, DuckDBTypeId.TIMESTAMP_NS, DuckDBTypeId.TIMESTAMP_TZ]);

export function columnType(type: DuckDBType): ColumnType {
  const id = type.typeId;
  if (id === DuckDBTypeId.BOOLEAN) return "boolean";
  if (integerIds.has(id)) return "integer";
  if (id === DuckDBTypeId.FLOAT || id === DuckDBTypeId.DOUBLE) return "float";
  if (id === DuckDBTypeId.DECIMAL) return "decimal";
  if (id === DuckDBTypeId.DATE) return "date";
  if (timestampIds.has(id)) return "timestamp";
  if (id === DuckDBTypeId.BLOB) return "bytes";
  return "text";
}

export function toCell(value: DuckDBValue, type: ColumnType): Cell {
  if (value === null) return null;
  switch (type) {
    case "boolean":
      return Boolean(value);
    case "integer":
      return typeof value === "bigint" ? value : BigInt(value as number);
    case "float":
      return Number(value);
    case "bytes":
      return value instanceof DuckDBBlobValue ? value.bytes : new TextEncoder().encode(String(value));
    default:
      return String(value);
  }
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteString = (text: string) => `'${text.replaceAll("'", "''")}'`;

export function resolveFilePath(path: string, baseDir: string | undefined): string {
  return isAbsolute(path) ? path : resolve(baseDir ?? process.cwd(), path);
}

export async function openFile(descriptor: FileDescriptor, options: ReadOptions, baseDir: string | undefined): Promise<RawRead> {
  const path = resolveFilePath(descriptor.path, baseDir);
  if (!existsSync(path)) {
    throw new ConnectorError("CONNECTOR_FILE_NOT_FOUND", `${descriptor.type} file ${path} does not exist; check the descriptor's path (relative paths resolve against the collaboration or pipeline file's folder)`, { details: { path } });
  }
  if (options.after !== undefined && descriptor.cursor === undefined) {
    throw new ConnectorError("CONNECTOR_BAD_CURSOR", "a read after a cursor value needs the descriptor's cursor column");
  }
  const batchSize = batchSizeOf(options);
  // No extension is fetched or loaded behind the connector's back (httpfs would open its own sockets).
  const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
  const connection = await instance.connect();
  const close = async (): Promise<void> => {
    connection.closeSync();
    instance.closeSync();
  };
  try {
    const source = `${descriptor.type === "csv" ? "read_csv" : "read_parquet"}(${quoteString(path)})`;
    let probe;
    try {
      probe = await connection.run(`SELECT * FROM ${source} LIMIT 0`);
    } catch (error) {
      throw new ConnectorError("CONNECTOR_QUERY_FAILED", `could not read ${descriptor.type} file ${path}: ${(error as Error).message}`, { details: { path }, cause: error });
    }
    const duckTypes = probe.columnTypes();
    const columns: Column[] = probe.columnNames().map((name, i) => ({ name, type: columnType(duckTypes[i]!) }));
    let sql = `SELECT * FROM ${source}`;
    const values: DuckDBValue[] = [];
    let cursorIndex: number | undefined;
    if (descriptor.cursor !== undefined) {
      cursorIndex = columnIndex(columns, descriptor.cursor);
      if (cursorIndex === undefined) {
        throw new ConnectorError("CONNECTOR_CURSOR_COLUMN_MISSING", `cursor column "${descriptor.cursor}" is not in ${path}; its columns are ${columns.map((c) => c.name).join(", ")}`, { details: { cursor: descriptor.cursor, columns: columns.map((c) => c.name) } });
      }
      const col = quoteIdent(descriptor.cursor);
      sql += ` WHERE ${col} IS NOT NULL`;
      if (options.after !== undefined) {
        sql += ` AND ${col} > CAST($1 AS ${duckTypes[cursorIndex]!.toString()})`;
        values.push(options.after);
      }
      sql += ` ORDER BY ${col}`;
    }
    let result: DuckDBResult;
    try {
      result = await connection.stream(sql, values);
    } catch (error) {
      throw new ConnectorError("CONNECTOR_BAD_CURSOR", `cursor value is not a valid ${duckTypes[cursorIndex ?? 0]!.toString()} for column "${descriptor.cursor}"`, { cause: error });
    }
    const types = columns.map((c) => c.type);
    async function* batches(): AsyncGenerator<readonly Row[]> {
      let batch: Row[] = [];
      for await (const rows of result.yieldRows()) {
        for (const row of rows) {
          batch.push(row.map((value, i) => toCell(value, types[i]!)));
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
      }
      if (batch.length > 0) yield batch;
    }
    return { columns, cursorIndex, batches: batches(), close };
  } catch (error) {
    await close();
    throw error;
  }
}
