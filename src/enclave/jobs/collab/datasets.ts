/**
 * A party's datasets inside its enclave: read through the connectors (credentials never leave the enclave),
 * carried to the compute enclave as one serialized payload inside a sealed blob, and loaded into DuckDB
 * there. The payload comes only from an attested partner enclave whose signature the compute enclave has
 * checked, so its structured-clone encoding (node:v8) is read from a trusted peer, and then checked for shape.
 */
import { deserialize, serialize } from "node:v8";
import type { DuckDBAppender, DuckDBConnection } from "@duckdb/node-api";
import { openDataset } from "../../connectors/index.ts";
import type { Column, ColumnType, Row } from "../../connectors/index.ts";
import { CollabJobError } from "./errors.ts";

export interface ReadDataset {
  party: string;
  name: string;
  columns: Column[];
  batches: Row[][];
  digest: string;
  rowCount: number;
}

/** Reads every dataset of a party through its connector; `network` options are for descriptors that use the enclave's relay. */
export async function readDatasets(party: string, descriptors: Record<string, Record<string, unknown>>, baseDir: string | undefined): Promise<ReadDataset[]> {
  const out: ReadDataset[] = [];
  for (const [name, descriptor] of Object.entries(descriptors)) {
    const reader = await openDataset(descriptor, { ...(baseDir ? { baseDir } : {}), batchSize: 50_000 });
    const batches: Row[][] = [];
    for await (const batch of reader) batches.push(batch as Row[]);
    const summary = reader.summary();
    out.push({ party, name, columns: [...summary.columns], batches, digest: `0x${summary.digest}`, rowCount: summary.rowCount });
  }
  return out;
}

const columnTypes = new Set<ColumnType>(["boolean", "integer", "float", "decimal", "text", "date", "timestamp", "json", "bytes"]);

export function encodeTransfer(datasets: readonly ReadDataset[]): Uint8Array {
  return serialize({ v: 1, datasets });
}

export function decodeTransfer(bytes: Uint8Array, party: string): ReadDataset[] {
  let value: unknown;
  try {
    value = deserialize(bytes);
  } catch {
    throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party}'s rows do not decode`);
  }
  const v = value as { v?: unknown; datasets?: unknown };
  if (v.v !== 1 || !Array.isArray(v.datasets)) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party}'s payload is not a version 1 transfer`);
  for (const d of v.datasets as ReadDataset[]) {
    const ok =
      typeof d.name === "string" &&
      d.party === party &&
      Array.isArray(d.columns) &&
      d.columns.every((c) => typeof c.name === "string" && columnTypes.has(c.type)) &&
      Array.isArray(d.batches) &&
      d.batches.every((b) => Array.isArray(b) && b.every((r) => Array.isArray(r) && r.length === d.columns.length)) &&
      /^0x[0-9a-f]{64}$/.test(d.digest) &&
      d.batches.reduce((n, b) => n + b.length, 0) === d.rowCount;
    if (!ok) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party}'s dataset ${JSON.stringify(String(d.name))} is malformed`);
  }
  return v.datasets as ReadDataset[];
}

const sqlType: Record<ColumnType, string> = {
  boolean: "BOOLEAN",
  integer: "HUGEINT",
  float: "DOUBLE",
  decimal: "VARCHAR",
  text: "VARCHAR",
  date: "VARCHAR",
  timestamp: "VARCHAR",
  json: "VARCHAR",
  bytes: "BLOB",
};

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Loads a dataset into a table named after it. Integers load as HUGEINT (then BIGINT where every value fits),
 * decimals as DECIMAL(38,10) and dates as DATE; timestamps and JSON stay text (their source's rendering).
 */
export async function loadDataset(connection: DuckDBConnection, d: ReadDataset): Promise<void> {
  const staging = `__cloister_load_${d.name}`;
  await connection.run(`CREATE TABLE ${quote(staging)} (${d.columns.map((c) => `${quote(c.name)} ${sqlType[c.type]}`).join(", ")})`);
  const appender = await connection.createAppender(staging);
  const append = d.columns.map((c) => appenderFor(appender, c.type));
  for (const batch of d.batches) {
    for (const row of batch) {
      for (let i = 0; i < row.length; i++) {
        const cell = row[i];
        if (cell === null || cell === undefined) appender.appendNull();
        else append[i]!(cell);
      }
      appender.endRow();
    }
  }
  appender.closeSync();
  const select = d.columns
    .map((c) => {
      const col = quote(c.name);
      if (c.type === "integer") return `CAST(${col} AS BIGINT) AS ${col}`;
      if (c.type === "decimal") return `CAST(${col} AS DECIMAL(38,10)) AS ${col}`;
      if (c.type === "date") return `TRY_CAST(${col} AS DATE) AS ${col}`;
      return col;
    })
    .join(", ");
  try {
    await connection.run(`CREATE TABLE ${quote(d.name)} AS SELECT ${select} FROM ${quote(staging)}`);
  } catch {
    // An integer beyond 64 bits, say: keep the wide types rather than fail (the message would quote a value).
    await connection.run(`CREATE TABLE ${quote(d.name)} AS SELECT * FROM ${quote(staging)}`);
  }
  await connection.run(`DROP TABLE ${quote(staging)}`);
}

function appenderFor(a: DuckDBAppender, type: ColumnType): (cell: unknown) => void {
  switch (type) {
    case "boolean":
      return (v) => a.appendBoolean(v as boolean);
    case "integer":
      return (v) => a.appendHugeInt(v as bigint);
    case "float":
      return (v) => a.appendDouble(v as number);
    case "bytes":
      return (v) => a.appendBlob(v as Uint8Array);
    default:
      return (v) => a.appendVarchar(v as string);
  }
}
