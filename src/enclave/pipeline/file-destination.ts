/**
 * csv and parquet destinations, for pipelines over files (the demo; a node's
 * own disk). DuckDB builds the new file from the old one and the rows
 * (append: old + new; replace: new; upsert: old rows whose key is not among
 * the new, + new), writes it beside the target and renames it over it. The
 * run marker is a sidecar `<file>.cloister-runs.json` written (aside, then
 * renamed) after the rename, all under the file's lock (file-lock.ts), so two
 * runs of the same slot at once load it once. Weaker than a database's
 * marker, and said so in docs/pipelines.md:
 * the host owns this disk, so it can alter the file or the sidecar, and a
 * node dying between the rename and the sidecar leaves an append done twice
 * if the run is repeated.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { z } from "zod";
import { DatasetDigest } from "../connectors/digest.ts";
import type { Cell, Column, ColumnType, Row } from "../connectors/types.ts";
import type { RunMarker, WriteSummary } from "../connectors/write.ts";
import { PipelineRunError } from "./errors.ts";
import { withFileLock } from "./file-lock.ts";

export const fileDestinationSchema = z
  .strictObject({ type: z.enum(["csv", "parquet"]), path: z.string().min(1), mode: z.enum(["append", "replace", "upsert"]), key: z.array(z.string().min(1)).min(1).optional() })
  .refine((d) => (d.mode === "upsert") === (d.key !== undefined), { message: "upsert needs key (the columns that identify a row); append and replace take no key", path: ["key"] });
export type FileDestination = z.infer<typeof fileDestinationSchema>;

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteString = (text: string) => `'${text.replaceAll("'", "''")}'`;
const duckType: Record<ColumnType, string> = { boolean: "BOOLEAN", integer: "HUGEINT", float: "DOUBLE", decimal: "VARCHAR", text: "VARCHAR", date: "VARCHAR", timestamp: "VARCHAR", json: "VARCHAR", bytes: "BLOB" };

export function parseFileDestination(raw: unknown): FileDestination {
  const parsed = fileDestinationSchema.safeParse(raw);
  if (!parsed.success) {
    throw new PipelineRunError("PIPELINE_BAD_DESTINATION", `bad file destination: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(destination)"}: ${i.message}`).join("; ")}`);
  }
  return parsed.data;
}

const markerPath = (path: string) => `${path}.cloister-runs.json`;

async function readMarkers(path: string): Promise<Record<string, string>> {
  if (!existsSync(markerPath(path))) return {};
  return JSON.parse(await readFile(markerPath(path), "utf8")) as Record<string, string>;
}

export async function writeFileRows(dest: FileDestination, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>, marker?: RunMarker): Promise<WriteSummary> {
  await mkdir(dirname(dest.path), { recursive: true });
  return withFileLock(dest.path, () => writeLocked(dest, columns, batches, marker));
}

async function writeLocked(dest: FileDestination, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>, marker?: RunMarker): Promise<WriteSummary> {
  const markers = marker ? await readMarkers(dest.path) : {};
  if (marker && markers[marker.runId] !== undefined) return { rowCount: 0, digest: "", created: false, resumed: markers[marker.runId] };
  const key = dest.key ?? [];
  const missing = key.filter((k) => !columns.some((c) => c.name === k));
  if (missing.length > 0) throw new PipelineRunError("PIPELINE_BAD_DESTINATION", `upsert key column ${missing.join(", ")} is not among the rows' columns (${columns.map((c) => c.name).join(", ")})`);
  const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
  const connection = await instance.connect();
  try {
    await connection.run(`CREATE TABLE incoming (${columns.map((c) => `${quoteIdent(c.name)} ${duckType[c.type]}`).join(", ")})`);
    const appender = await connection.createAppender("incoming");
    const digest = new DatasetDigest(columns);
    const types = columns.map((c) => c.type);
    let rowCount = 0;
    for await (const batch of batches) {
      for (const row of batch) {
        digest.addRow(row, types);
        rowCount++;
        row.forEach((cell: Cell, i) => {
          if (cell === null) appender.appendNull();
          else if (types[i] === "boolean") appender.appendBoolean(Boolean(cell));
          else if (types[i] === "integer") appender.appendHugeInt(BigInt(cell as bigint));
          else if (types[i] === "float") appender.appendDouble(Number(cell));
          else if (types[i] === "bytes") appender.appendBlob(cell as Uint8Array);
          else appender.appendVarchar(String(cell));
        });
        appender.endRow();
      }
    }
    appender.closeSync();
    const exists = existsSync(dest.path);
    const reader = `${dest.type === "csv" ? "read_csv" : "read_parquet"}(${quoteString(dest.path)})`;
    const names = columns.map((c) => quoteIdent(c.name)).join(", ");
    let select = "SELECT * FROM incoming";
    if (exists && dest.mode === "append") select = `SELECT ${names} FROM ${reader} UNION ALL SELECT ${names} FROM incoming`;
    if (exists && dest.mode === "upsert") {
      const match = key.map((k) => `o.${quoteIdent(k)} IS NOT DISTINCT FROM n.${quoteIdent(k)}`).join(" AND ");
      select = `SELECT ${names} FROM ${reader} o WHERE NOT EXISTS (SELECT 1 FROM incoming n WHERE ${match}) UNION ALL SELECT ${names} FROM incoming`;
    }
    const tmp = `${dest.path}.tmp-${process.pid}`;
    try {
      await connection.run(`COPY (${select}) TO ${quoteString(tmp)} (FORMAT ${dest.type === "csv" ? "csv, HEADER true" : "parquet"})`);
    } catch (error) {
      throw new PipelineRunError("PIPELINE_LOAD_FAILED", `could not write ${dest.type} file ${dest.path}: ${(error as Error).message.split("\n")[0]}`, { cause: error });
    }
    await rename(tmp, dest.path);
    const written = { rowCount, digest: digest.digest() };
    if (marker) {
      await writeFile(`${markerPath(dest.path)}.tmp-${process.pid}`, JSON.stringify({ ...markers, [marker.runId]: marker.record(written) }));
      await rename(`${markerPath(dest.path)}.tmp-${process.pid}`, markerPath(dest.path));
    }
    return { ...written, created: !exists };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
