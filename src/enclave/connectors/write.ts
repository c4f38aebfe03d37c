import pg from "pg";
import mysql from "mysql2/promise";
import { parseDestination, type DestinationDescriptor } from "./descriptor.ts";
import { DatasetDigest } from "./digest.ts";
import { ConnectorError } from "./errors.ts";
import { mysqlConnectionConfig, mysqlError } from "./mysql.ts";
import { postgresClientConfig, postgresError } from "./postgres.ts";
import type { CloisterError } from "../../util/base-error.ts";
import { redactUrl } from "./redact.ts";
import type { Cell, Column, ColumnType, ConnectorNetwork, Row } from "./types.ts";

/**
 * The destination side for postgres and mysql: rows in, one transaction per
 * write, so a failed write leaves the table as it was. `append` inserts;
 * `replace` deletes every row then inserts (readers see the old rows or the
 * new ones, never a mix); `upsert` inserts or updates the row with the same
 * key, and needs a unique index on exactly the key columns (created with the
 * table when the table does not exist yet), so a write done twice leaves each
 * row once.
 */

export interface WriteSummary {
  readonly rowCount: number;
  /** The dataset digest (digest.ts) of the columns and rows written, in order. */
  readonly digest: string;
  /** True when the write created the table. */
  readonly created: boolean;
  /** With a marker: the record an earlier write of the same run left; nothing was written this time. */
  readonly resumed?: string;
}

/**
 * A run marker (pipelines, issue 14): a row in `table` (created when missing: run_id primary key, record)
 * inserted in the same transaction as the rows. A write whose run id is already marked writes nothing and
 * returns the marker's record instead, so a run loaded twice (a failover node repeating a run whose node
 * died after loading, or a host replaying an old cursor) leaves each row once, whatever the mode.
 */
export interface RunMarker {
  table: string;
  runId: string;
  /** The text stored with the marker, from what was written (the pipeline job keeps its counts and sealed cursor there). */
  record(summary: { rowCount: number; digest: string }): string;
}

interface Session {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  end(): Promise<void>;
}

interface Dialect {
  quote(part: string): string;
  connect(url: string, network: ConnectorNetwork | undefined): Promise<Session>;
  error(error: unknown, destination: DestinationDescriptor, phase: "connect" | "query"): CloisterError;
  sqlType(type: ColumnType, isKey: boolean): string;
  tableExists(session: Session, table: string): Promise<boolean>;
  /** Column sets (sorted) of the table's unique indexes. */
  uniqueKeys(session: Session, table: string): Promise<string[][]>;
  placeholders(rows: number, columns: number): string;
  upsert(columns: readonly string[], key: readonly string[]): string;
  param(cell: Cell): unknown;
}

const ROWS_PER_INSERT = 500;
const param = (cell: Cell): unknown => (typeof cell === "bigint" ? cell.toString() : cell instanceof Uint8Array ? Buffer.from(cell) : cell);
const splitTable = (table: string): [string | null, string] => {
  const parts = table.split(".");
  return parts.length > 1 ? [parts.slice(0, -1).join("."), parts.at(-1)!] : [null, table];
};

const postgresDialect: Dialect = {
  quote: (part) => `"${part.replaceAll('"', '""')}"`,
  async connect(url, network) {
    const client = new pg.Client(postgresClientConfig(url, network));
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return { query: async (sql, params) => (await client.query(sql, params)).rows, end: () => client.end() };
  },
  error: (error, destination, phase) => postgresError(error, destination, phase),
  sqlType: (type) => ({ boolean: "BOOLEAN", integer: "BIGINT", float: "DOUBLE PRECISION", decimal: "NUMERIC", text: "TEXT", date: "DATE", timestamp: "TIMESTAMPTZ", json: "JSONB", bytes: "BYTEA" })[type],
  async tableExists(session, table) {
    const [row] = await session.query("SELECT to_regclass($1) IS NOT NULL AS found", [table.split(".").map(postgresDialect.quote).join(".")]);
    return row?.found === true;
  },
  async uniqueKeys(session, table) {
    const rows = await session.query(
      `SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = to_regclass($1) AND i.indisunique GROUP BY i.indexrelid`,
      [table.split(".").map(postgresDialect.quote).join(".")],
    );
    return rows.map((r) => r.cols as string[]);
  },
  placeholders(rows, columns) {
    let n = 0;
    return Array.from({ length: rows }, () => `(${Array.from({ length: columns }, () => `$${++n}`).join(", ")})`).join(", ");
  },
  upsert(columns, key) {
    const rest = columns.filter((c) => !key.includes(c));
    const target = key.map(postgresDialect.quote).join(", ");
    return rest.length === 0 ? ` ON CONFLICT (${target}) DO NOTHING` : ` ON CONFLICT (${target}) DO UPDATE SET ${rest.map((c) => `${postgresDialect.quote(c)} = EXCLUDED.${postgresDialect.quote(c)}`).join(", ")}`;
  },
  param,
};

const mysqlDialect: Dialect = {
  quote: (part) => `\`${part.replaceAll("`", "``")}\``,
  async connect(url, network) {
    const connection = await mysql.createConnection({ ...mysqlConnectionConfig(url, network), supportBigNumbers: true, bigNumberStrings: true });
    connection.on("error", () => undefined);
    return { query: async (sql, params) => (await connection.query(sql, params))[0] as Record<string, unknown>[], end: () => connection.end() };
  },
  error: (error, destination, phase) => mysqlError(error, destination, phase),
  sqlType: (type, isKey) =>
    ({ boolean: "BOOLEAN", integer: "BIGINT", float: "DOUBLE", decimal: "DECIMAL(65,30)", text: isKey ? "VARCHAR(255)" : "TEXT", date: "DATE", timestamp: "DATETIME(6)", json: "JSON", bytes: isKey ? "VARBINARY(255)" : "LONGBLOB" })[type],
  async tableExists(session, table) {
    const [schema, name] = splitTable(table);
    const [row] = await session.query("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?", [schema, name]);
    return Number(row?.n) > 0;
  },
  async uniqueKeys(session, table) {
    const [schema, name] = splitTable(table);
    const rows = await session.query("SELECT index_name AS idx, column_name AS col FROM information_schema.statistics WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND non_unique = 0", [schema, name]);
    const byIndex = new Map<string, string[]>();
    for (const r of rows) byIndex.set(String(r.idx), [...(byIndex.get(String(r.idx)) ?? []), String(r.col)]);
    return [...byIndex.values()].map((cols) => cols.sort());
  },
  placeholders: (rows, columns) => Array.from({ length: rows }, () => `(${Array.from({ length: columns }, () => "?").join(", ")})`).join(", "),
  upsert(columns, key) {
    const rest = columns.filter((c) => !key.includes(c));
    const update = (rest.length > 0 ? rest : [key[0]!]).map((c) => `${mysqlDialect.quote(c)} = VALUES(${mysqlDialect.quote(c)})`);
    return ` ON DUPLICATE KEY UPDATE ${update.join(", ")}`;
  },
  param,
};

/**
 * Writes the batches to the destination table (created from `columns` when
 * missing) in one transaction and returns what was written.
 */
export async function writeRows(
  destination: DestinationDescriptor | unknown,
  columns: readonly Column[],
  batches: AsyncIterable<readonly Row[]> | Iterable<readonly Row[]>,
  options: { network?: ConnectorNetwork; marker?: RunMarker } = {},
): Promise<WriteSummary> {
  const dest = parseDestination(destination);
  const dialect = dest.type === "postgres" ? postgresDialect : mysqlDialect;
  const names = columns.map((c) => c.name);
  const key = dest.key ?? [];
  const missing = key.filter((k) => !names.includes(k));
  if (missing.length > 0) {
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `upsert key column ${missing.map((k) => `"${k}"`).join(", ")} is not among the rows' columns (${names.join(", ")}); fix the destination's key`, { details: { key, columns: names } });
  }
  if (columns.length === 0) throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", "there are no columns to write");

  let session: Session;
  try {
    session = await dialect.connect(dest.url, options.network);
  } catch (error) {
    throw dialect.error(error, dest, "connect");
  }
  const table = dest.table.split(".").map(dialect.quote).join(".");
  const digest = new DatasetDigest(columns);
  const types = columns.map((c) => c.type);
  let rowCount = 0;
  let created = false;
  const marker = options.marker;
  const markerTable = marker?.table.split(".").map(dialect.quote).join(".");
  const p = (n: number) => (dest.type === "postgres" ? `$${n}` : "?");
  try {
    // Before the transaction: MariaDB commits implicitly on DDL.
    if (marker) await session.query(`CREATE TABLE IF NOT EXISTS ${markerTable} (run_id VARCHAR(80) NOT NULL PRIMARY KEY, record TEXT NOT NULL)`);
    await session.query(dest.type === "postgres" ? "BEGIN" : "START TRANSACTION");
    if (marker) {
      const [done] = await session.query(`SELECT record FROM ${markerTable} WHERE run_id = ${p(1)}`, [marker.runId]);
      if (done) {
        await session.query("ROLLBACK");
        return { rowCount: 0, digest: "", created: false, resumed: String(done.record) };
      }
    }
    if (!(await dialect.tableExists(session, dest.table))) {
      const defs = columns.map((c) => `${dialect.quote(c.name)} ${dialect.sqlType(c.type, key.includes(c.name))}${key.includes(c.name) ? " NOT NULL" : ""}`);
      if (key.length > 0) defs.push(`PRIMARY KEY (${key.map(dialect.quote).join(", ")})`);
      await session.query(`CREATE TABLE ${table} (${defs.join(", ")})`);
      created = true;
    } else if (dest.mode === "upsert") {
      const wanted = [...key].sort().join("\0");
      if (!(await dialect.uniqueKeys(session, dest.table)).some((cols) => cols.join("\0") === wanted)) {
        throw new ConnectorError("CONNECTOR_BAD_DESTINATION", `table ${dest.table} has no unique index on exactly (${key.join(", ")}); upsert needs one (CREATE UNIQUE INDEX ... ON ${dest.table} (${key.join(", ")}))`, { details: { url: redactUrl(dest.url), table: dest.table, key } });
      }
    }
    if (dest.mode === "replace" && !created) await session.query(`DELETE FROM ${table}`);
    const insert = `INSERT INTO ${table} (${names.map(dialect.quote).join(", ")}) VALUES `;
    const suffix = dest.mode === "upsert" ? dialect.upsert(names, key) : "";
    const flush = async (rows: readonly Row[]): Promise<void> => {
      if (rows.length === 0) return;
      await session.query(insert + dialect.placeholders(rows.length, names.length) + suffix, rows.flatMap((row) => row.map(dialect.param)));
    };
    for await (const batch of batches) {
      for (const row of batch) {
        if (row.length !== columns.length) throw new ConnectorError("CONNECTOR_BAD_ROW", `row ${rowCount + 1} has ${row.length} cells for ${columns.length} columns`, { details: { row: rowCount + 1 } });
        digest.addRow(row, types);
        rowCount++;
      }
      for (let i = 0; i < batch.length; i += ROWS_PER_INSERT) await flush(batch.slice(i, i + ROWS_PER_INSERT));
    }
    const written = { rowCount, digest: digest.digest() };
    // A concurrent write of the same run fails here (primary key) and rolls back whole.
    if (marker) await session.query(`INSERT INTO ${markerTable} (run_id, record) VALUES (${p(1)}, ${p(2)})`, [marker.runId, marker.record(written)]);
    await session.query("COMMIT");
    return { ...written, created };
  } catch (error) {
    await session.query("ROLLBACK").catch(() => undefined);
    throw dialect.error(error, dest, "query");
  } finally {
    await session.end().catch(() => undefined);
  }
}
