/**
 * Runs a granted statement against its dataset, once per use: in one
 * transaction the enclave inserts the use's run marker into the dataset's
 * `cloister_grant_uses` table (primary key: grant id and use number), runs the
 * statement, records the rows it affected, and commits. A second run of the
 * same use (a replay by the host, two nodes at once, or a retry after the
 * chain record was lost) meets the marker and changes nothing: each use is
 * applied to the dataset at most once, and its run id is recorded on chain at
 * most once (Grants.runRecorded).
 *
 * Errors from the database cross the gate as their driver code only: a
 * driver's message may quote row values (MariaDB's duplicate-entry message
 * does) or the connection URL.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import mysql from "mysql2/promise";
import pg from "pg";
import type { GrantedDataset, GrantReadResult } from "../../protocol/operate.ts";
import { mysqlConnectionConfig } from "../connectors/mysql.ts";
import { postgresClientConfig } from "../connectors/postgres.ts";
import type { ConnectorNetwork } from "../connectors/types.ts";
import { EnclaveError } from "../errors.ts";
import type { EnclaveNet } from "../net/connect.ts";

export const runMarkerTable = "cloister_grant_uses";
/** The use number of the owner's revocation mark (uses are numbered from 0). */
export const REVOKED_MARK = -1;

const markerTableDdl = `CREATE TABLE IF NOT EXISTS ${runMarkerTable} (grant_id VARCHAR(80) NOT NULL, use_index BIGINT NOT NULL, run_id CHAR(66) NOT NULL, statement_digest CHAR(66) NOT NULL, rows_affected BIGINT NOT NULL, PRIMARY KEY (grant_id, use_index))`;

export interface UseMarker {
  grantId: bigint;
  useIndex: number;
  runId: string;
  statementDigest: string;
  /** The grant's expiry (Unix seconds), checked again against the dataset's own clock. */
  expiry: number;
}

/** The database server's clock, in Unix seconds: a clock the node does not set (over a pinned TLS connection, one it cannot fake). */
const clockQuery = { postgres: "SELECT floor(extract(epoch FROM now()))", mysql: "SELECT UNIX_TIMESTAMP()", duckdb: "SELECT CAST(floor(epoch(now())) AS BIGINT)" } as const;

interface Session {
  run(sql: string, params?: readonly (string | number)[]): Promise<number>;
  /** A read: column names and every cell as text. */
  read(sql: string): Promise<GrantReadResult>;
  isDuplicate(error: unknown): boolean;
  codeOf(error: unknown): string;
  end(): Promise<void>;
}

/** A pinned dataset's connection goes through the enclave's own network, TLS inside the enclave; never in the clear. */
function pinnedNetwork(pin: string | undefined, net: EnclaveNet | undefined): ConnectorNetwork | undefined {
  if (pin === undefined) return undefined;
  if (!net) throw new EnclaveError("BAD_REQUEST", "the dataset pins its server's certificate, but this enclave has no network of its own to open TLS through");
  return { net, pin: { kind: "certificate", sha256: pin } };
}

async function postgresSession(url: string, network: ConnectorNetwork | undefined): Promise<Session> {
  const client = new pg.Client(postgresClientConfig(url, network));
  client.on("error", () => undefined);
  await client.connect();
  return {
    run: async (sql, params) => (await client.query(sql, params ? [...params] : undefined)).rowCount ?? 0,
    async read(sql) {
      const result = await client.query<(string | null)[]>({ text: sql, rowMode: "array", types: { getTypeParser: () => (value: string) => value } });
      return { columns: result.fields.map((f) => f.name), rows: result.rows };
    },
    isDuplicate: (e) => (e as { code?: string }).code === "23505",
    codeOf: (e) => String((e as { code?: string }).code ?? "unknown"),
    end: () => client.end(),
  };
}

async function mysqlSession(url: string, network: ConnectorNetwork | undefined): Promise<Session> {
  const connection = await mysql.createConnection({ ...mysqlConnectionConfig(url, network), supportBigNumbers: true, bigNumberStrings: true });
  connection.on("error", () => undefined);
  return {
    async run(sql, params) {
      const [result] = await connection.query(sql, params ? [...params] : undefined);
      return (result as { affectedRows?: number }).affectedRows ?? 0;
    },
    async read(sql) {
      const [rows, fields] = await connection.query({ sql, rowsAsArray: true, dateStrings: true });
      return { columns: (fields ?? []).map((f) => f.name), rows: (rows as unknown[][]).map((row) => row.map(cellText)) };
    },
    isDuplicate: (e) => (e as { errno?: number }).errno === 1062,
    codeOf: (e) => String((e as { code?: string }).code ?? "unknown"),
    end: () => connection.end(),
  };
}

async function duckdbSession(path: string): Promise<Session> {
  const instance = await DuckDBInstance.create(path, { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
  const connection = await instance.connect();
  return {
    run: async (sql, params) => (await connection.run(sql, params ? [...params] : undefined)).rowsChanged,
    async read(sql) {
      const result = await connection.runAndReadAll(sql);
      return { columns: result.columnNames(), rows: result.getRows().map((row) => row.map(cellText)) };
    },
    isDuplicate: (e) => /constraint/i.test((e as Error).message ?? "") && /duplicate|primary key|unique/i.test((e as Error).message ?? ""),
    codeOf: (e) => (e as Error).name ?? "Error",
    async end() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/** A cell as text: bytes in hex, dates as ISO, everything else as its string form. */
function cellText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

const placeholders = (type: GrantedDataset["connection"]["type"], n: number) => Array.from({ length: n }, (_, i) => (type === "postgres" ? `$${i + 1}` : "?")).join(", ");

async function openSession(dataset: GrantedDataset, net: EnclaveNet | undefined): Promise<Session> {
  const { connection } = dataset;
  try {
    if (connection.type === "duckdb") return await duckdbSession(connection.path);
    const network = pinnedNetwork(connection.pin, net);
    return connection.type === "postgres" ? await postgresSession(connection.url, network) : await mysqlSession(connection.url, network);
  } catch (error) {
    if (error instanceof EnclaveError) throw error;
    const code = (error as { code?: string }).code ?? "unknown";
    const pinned = code.startsWith("NET_") ? ": the server's certificate is not the one the owner pinned, or the node's relay refused the connection" : "";
    throw new EnclaveError("OPERATE_DATASET_UNREACHABLE", `the enclave could not open dataset "${dataset.name}" (${connection.type}, ${code}${pinned}); ask the owner to check the dataset's connection`);
  }
}

/**
 * The owner's side: marks grant `grantId` revoked in the dataset itself (a row of the run-marker table with use
 * number -1), which every later run checks in its own transaction. The chain's revocation is the record; this
 * mark makes it hold even against a node that proves the grant at a block from before it. Idempotent.
 */
export async function markGrantRevoked(dataset: GrantedDataset, grantId: bigint): Promise<void> {
  // The owner reaches its own database directly: a pin is for the enclave's connection through a relay.
  const direct: GrantedDataset = dataset.connection.type === "duckdb" ? dataset : { ...dataset, connection: { type: dataset.connection.type, url: dataset.connection.url } };
  const session = await openSession(direct, undefined);
  try {
    await session.run(markerTableDdl);
    const p = placeholders(dataset.connection.type, 5);
    const insert = `INSERT INTO ${runMarkerTable} (grant_id, use_index, run_id, statement_digest, rows_affected) VALUES (${p})`;
    try {
      await session.run(insert, [grantId.toString(), REVOKED_MARK, `0x${"0".repeat(64)}`, `0x${"0".repeat(64)}`, 0]);
    } catch (error) {
      if (!session.isDuplicate(error)) throw new EnclaveError("OPERATE_STATEMENT_FAILED", `could not mark grant ${grantId} revoked in dataset "${dataset.name}" (driver code ${session.codeOf(error)})`);
    }
  } finally {
    await session.end().catch(() => undefined);
  }
}

/**
 * Runs `statement` against `dataset` as use `marker.useIndex` of the grant; returns the rows it affected (a read:
 * the rows it returned, and the rows themselves).
 */
export async function applyGrantedStatement(dataset: GrantedDataset, statement: string, marker: UseMarker, net: EnclaveNet | undefined, read = false): Promise<{ affected: number; read?: GrantReadResult }> {
  const { connection } = dataset;
  const session = await openSession(dataset, net);
  const grant = marker.grantId.toString();
  try {
    await session.run(markerTableDdl);
    await session.run("BEGIN");
    // The window's end by the dataset's clock too: the block the node proved the grant at may be an old one.
    const clock = Number((await session.read(clockQuery[connection.type])).rows[0]?.[0]);
    if (!(clock < marker.expiry)) {
      await session.run("ROLLBACK").catch(() => undefined);
      throw new EnclaveError(
        "GRANT_EXPIRED",
        `grant 0x${marker.grantId.toString(16).padStart(64, "0")} expired at ${new Date(marker.expiry * 1000).toISOString()} by the dataset's own clock (${Number.isFinite(clock) ? new Date(clock * 1000).toISOString() : "unreadable"}), though not at the block the node sent; ask the owner for a new grant`,
      );
    }
    // The owner's revocation mark in the dataset itself (markGrantRevoked): the block the node sent may predate the revocation.
    const revokedMark = await session.read(`SELECT count(*) FROM ${runMarkerTable} WHERE grant_id = '${grant}' AND use_index = ${REVOKED_MARK}`);
    if (Number(revokedMark.rows[0]?.[0]) > 0) {
      await session.run("ROLLBACK").catch(() => undefined);
      throw new EnclaveError("GRANT_REVOKED", `grant 0x${marker.grantId.toString(16).padStart(64, "0")} was revoked by its owner, as its mark in dataset "${dataset.name}" says (the node's block may predate the revocation); no use is allowed`);
    }
    try {
      await session.run(`INSERT INTO ${runMarkerTable} (grant_id, use_index, run_id, statement_digest, rows_affected) VALUES (${placeholders(connection.type, 5)})`, [grant, marker.useIndex, marker.runId, marker.statementDigest, 0]);
    } catch (error) {
      await session.run("ROLLBACK").catch(() => undefined);
      if (session.isDuplicate(error)) {
        throw new EnclaveError(
          "GRANT_USE_ALREADY_APPLIED",
          `use ${marker.useIndex + 1} of grant ${grant} (run ${marker.runId}) was already applied to dataset "${dataset.name}" but is not recorded on chain yet: record that run's use first (the node keeps its outcome); it is not applied twice`,
        );
      }
      throw error;
    }
    let affected: number;
    let rows: GrantReadResult | undefined;
    try {
      if (read) {
        rows = await session.read(statement);
        affected = rows.rows.length;
      } else {
        affected = await session.run(statement);
      }
      await session.run(`UPDATE ${runMarkerTable} SET rows_affected = ${placeholders(connection.type, 1)} WHERE grant_id = ${connection.type === "postgres" ? "$2" : "?"} AND use_index = ${connection.type === "postgres" ? "$3" : "?"}`, [
        affected,
        grant,
        marker.useIndex,
      ]);
      await session.run("COMMIT");
    } catch (error) {
      await session.run("ROLLBACK").catch(() => undefined);
      throw new EnclaveError("OPERATE_STATEMENT_FAILED", `the granted statement failed in dataset "${dataset.name}" (driver code ${session.codeOf(error)}) and was rolled back; nothing was changed and no use is recorded`);
    }
    return { affected, ...(rows ? { read: rows } : {}) };
  } catch (error) {
    if (error instanceof EnclaveError) throw error;
    throw new EnclaveError("OPERATE_STATEMENT_FAILED", `the enclave could not prepare dataset "${dataset.name}" for the granted statement (driver code ${session.codeOf(error)}); check that the dataset's user may create and write the ${runMarkerTable} table`);
  } finally {
    await session.end().catch(() => undefined);
  }
}
