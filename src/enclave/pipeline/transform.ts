/**
 * A pipeline's transform inside the enclave: SQL run by DuckDB (in memory, no
 * extension loaded) over the rows read, as the table `source`; a JS program
 * in the task sandbox (rows in and out as JSON); or a copy. The output is a
 * column list and a stream of row batches, ready for a destination.
 */
import { DuckDBInstance, type DuckDBAppender, type DuckDBValue } from "@duckdb/node-api";
import { columnType, toCell } from "../connectors/duckdb-file.ts";
import { cellFromJson } from "../connectors/json-cell.ts";
import type { Cell, Column, ColumnType, Row } from "../connectors/types.ts";
import { runJsProgram } from "../executors/js-isolate.ts";
import { ProgramError } from "../executors/program-error.ts";
import { PipelineRunError } from "./errors.ts";

export interface Rows {
  columns: readonly Column[];
  batches: AsyncIterable<readonly Row[]>;
  /** Rows the transform produced, known once the batches are consumed. */
  count(): number;
  close(): Promise<void>;
}

const BATCH = 10_000;
const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
/** How each column type is held in DuckDB: as loaded, then as `source` shows it. */
const stagedType: Record<ColumnType, string> = { boolean: "BOOLEAN", integer: "HUGEINT", float: "DOUBLE", decimal: "VARCHAR", text: "VARCHAR", date: "VARCHAR", timestamp: "VARCHAR", json: "VARCHAR", bytes: "BLOB" };
const viewCast: Partial<Record<ColumnType, string>> = { integer: "BIGINT", decimal: "DECIMAL(38,10)", date: "DATE" };

function append(appender: DuckDBAppender, cell: Cell, type: ColumnType): void {
  if (cell === null) return appender.appendNull();
  switch (type) {
    case "boolean":
      return appender.appendBoolean(Boolean(cell));
    case "integer":
      return appender.appendHugeInt(typeof cell === "bigint" ? cell : BigInt(cell as number));
    case "float":
      return appender.appendDouble(Number(cell));
    case "bytes":
      return appender.appendBlob(cell instanceof Uint8Array ? cell : new TextEncoder().encode(String(cell)));
    default:
      return appender.appendVarchar(String(cell));
  }
}

/** Runs `sql` over the rows of `columns`/`batches` as the table `source`. */
export async function sqlTransform(sql: string, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>): Promise<Rows> {
  const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false", enable_external_access: "false" });
  const connection = await instance.connect();
  const close = async (): Promise<void> => {
    connection.closeSync();
    instance.closeSync();
  };
  try {
    const types = columns.map((c) => c.type);
    await connection.run(`CREATE TABLE staged (${columns.map((c) => `${quoteIdent(c.name)} ${stagedType[c.type]}`).join(", ")})`);
    const appender = await connection.createAppender("staged");
    for await (const batch of batches) {
      for (const row of batch) {
        for (let i = 0; i < row.length; i++) append(appender, row[i]!, types[i]!);
        appender.endRow();
      }
    }
    appender.closeSync();
    const projection = columns.map((c) => (viewCast[c.type] ? `CAST(${quoteIdent(c.name)} AS ${viewCast[c.type]}) AS ${quoteIdent(c.name)}` : quoteIdent(c.name)));
    await connection.run(`CREATE VIEW source AS SELECT ${projection.join(", ")} FROM staged`);
    let result;
    try {
      result = await connection.stream(sql);
    } catch (error) {
      throw new PipelineRunError("PIPELINE_TRANSFORM_FAILED", `the transform's SQL failed in DuckDB: ${(error as Error).message.split("\n")[0]}; it runs over the table "source" with columns ${columns.map((c) => c.name).join(", ")}`, { cause: error });
    }
    const outTypes = result.columnTypes().map(columnType);
    const outColumns: Column[] = result.columnNames().map((name, i) => ({ name, type: outTypes[i]! }));
    let count = 0;
    async function* out(): AsyncGenerator<readonly Row[]> {
      try {
        let batch: Row[] = [];
        for await (const rows of result!.yieldRows()) {
          for (const row of rows) {
            batch.push(row.map((v: DuckDBValue, i: number) => toCell(v, outTypes[i]!)));
            if (batch.length >= BATCH) {
              count += batch.length;
              yield batch;
              batch = [];
            }
          }
        }
        count += batch.length;
        if (batch.length > 0) yield batch;
      } finally {
        await close();
      }
    }
    return { columns: outColumns, batches: out(), count: () => count, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** JSON of a cell for a program: bigint as a number when exact, else text; bytes as base64. */
function jsonCell(cell: Cell): unknown {
  if (typeof cell === "bigint") return Number.isSafeInteger(Number(cell)) ? Number(cell) : cell.toString();
  if (cell instanceof Uint8Array) return Buffer.from(cell).toString("base64");
  return cell;
}

/**
 * Runs a JS module (default export: input bytes → output) in the task sandbox with the rows as a JSON array of
 * objects; it must return a JSON array of objects with the same keys, whose types give the output columns.
 */
export async function programTransform(source: string, name: string, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>): Promise<Rows> {
  const objects: Record<string, unknown>[] = [];
  for await (const batch of batches) for (const row of batch) objects.push(Object.fromEntries(columns.map((c, i) => [c.name, jsonCell(row[i]!)])));
  let output: Uint8Array;
  try {
    output = (await runJsProgram(source, new TextEncoder().encode(JSON.stringify(objects)), { memoryMb: 256, cpuTimeMs: 60_000, timeoutMs: 300_000, maxOutputBytes: 256 << 20 })).output;
  } catch (error) {
    if (error instanceof ProgramError) throw new PipelineRunError("PIPELINE_TRANSFORM_FAILED", `the transform program ${name} failed (${error.code}): ${error.message}`, { cause: error });
    throw error;
  }
  let rows: unknown;
  try {
    rows = JSON.parse(new TextDecoder().decode(output));
  } catch (cause) {
    throw new PipelineRunError("PIPELINE_TRANSFORM_FAILED", `the transform program ${name} must return a JSON array of row objects; its output is not JSON`, { cause });
  }
  if (!Array.isArray(rows) || rows.some((r) => typeof r !== "object" || r === null || Array.isArray(r))) {
    throw new PipelineRunError("PIPELINE_TRANSFORM_FAILED", `the transform program ${name} must return a JSON array of row objects`);
  }
  const records = rows as Record<string, unknown>[];
  const names = records.length > 0 ? Object.keys(records[0]!) : columns.map((c) => c.name);
  const typeOf = (name: string): ColumnType => {
    const v = records.find((r) => r[name] !== null && r[name] !== undefined)?.[name];
    if (typeof v === "boolean") return "boolean";
    if (typeof v === "number") return records.every((r) => r[name] === null || r[name] === undefined || Number.isInteger(r[name])) ? "integer" : "float";
    if (typeof v === "object") return "json";
    return "text";
  };
  const outColumns: Column[] = names.map((n) => ({ name: n, type: typeOf(n) }));
  const toRow = (r: Record<string, unknown>): Row => outColumns.map(({ name: n, type }) => cellFromJson(r[n], type));
  const all = records.map(toRow);
  async function* out(): AsyncGenerator<readonly Row[]> {
    for (let i = 0; i < all.length; i += BATCH) yield all.slice(i, i + BATCH);
  }
  return { columns: outColumns, batches: out(), count: () => all.length, close: async () => undefined };
}

/** No transform: the rows as read. */
export function copyTransform(columns: readonly Column[], batches: AsyncIterable<readonly Row[]>): Rows {
  let count = 0;
  async function* out(): AsyncGenerator<readonly Row[]> {
    for await (const batch of batches) {
      count += batch.length;
      yield batch;
    }
  }
  return { columns, batches: out(), count: () => count, close: async () => undefined };
}
