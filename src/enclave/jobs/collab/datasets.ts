/**
 * A party's datasets inside enclaves: read through the connectors (credentials never leave the party's
 * enclave), streamed batch by batch from a partner's enclave to the compute enclave over mutual attested TLS
 * (transfer.ts), and loaded into DuckDB there as the batches arrive (TableLoader).
 */
import type { DuckDBAppender, DuckDBConnection } from "@duckdb/node-api";
import type { Column, ColumnType, Row } from "../../connectors/index.ts";

/** A dataset as the compute enclave loaded it: whose, which, and the digest and count its reader computed. */
export interface LoadedDataset {
  party: string;
  name: string;
  digest: string;
  rowCount: number;
  /** What the digest is of: the connector's row encoding (docs/connectors.md), or the file's bytes (a file loaded in place). */
  of?: "rows" | "file";
  /** The approved query's own conditions the partner applied to the file before sending it (row-filter.ts): the rows counted are the rows sent. */
  filter?: string;
}

export const BATCH_ROWS = 20_000;

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
 * Loads one dataset into a table named after it, batch by batch. Integers stage as HUGEINT and land as BIGINT
 * (HUGEINT where a value does not fit), decimals as DECIMAL(38,10), dates as DATE; timestamps and JSON stay
 * text (their source's rendering).
 */
export class TableLoader {
  readonly #connection: DuckDBConnection;
  readonly #name: string;
  readonly #columns: readonly Column[];
  #appender: DuckDBAppender | undefined;
  #append: ((cell: unknown) => void)[] = [];
  rows = 0;

  private constructor(connection: DuckDBConnection, name: string, columns: readonly Column[]) {
    this.#connection = connection;
    this.#name = name;
    this.#columns = columns;
  }

  static async begin(connection: DuckDBConnection, name: string, columns: readonly Column[]): Promise<TableLoader> {
    const loader = new TableLoader(connection, name, columns);
    await connection.run(`CREATE TABLE ${quote(loader.#staging)} (${columns.map((c) => `${quote(c.name)} ${sqlType[c.type]}`).join(", ")})`);
    loader.#appender = await connection.createAppender(loader.#staging);
    loader.#append = columns.map((c) => appenderFor(loader.#appender!, c.type));
    return loader;
  }

  get #staging(): string {
    return `__cloister_load_${this.#name}`;
  }

  append(batch: readonly Row[]): void {
    const appender = this.#appender!;
    const append = this.#append;
    for (const row of batch) {
      for (let i = 0; i < append.length; i++) {
        const cell = row[i];
        if (cell === null || cell === undefined) appender.appendNull();
        else append[i]!(cell);
      }
      appender.endRow();
    }
    this.rows += batch.length;
  }

  async finish(): Promise<void> {
    this.#appender!.closeSync();
    const select = this.#columns
      .map((c) => {
        const col = quote(c.name);
        if (c.type === "integer") return `CAST(${col} AS BIGINT) AS ${col}`;
        if (c.type === "decimal") return `CAST(${col} AS DECIMAL(38,10)) AS ${col}`;
        if (c.type === "date") return `TRY_CAST(${col} AS DATE) AS ${col}`;
        return col;
      })
      .join(", ");
    try {
      await this.#connection.run(`CREATE TABLE ${quote(this.#name)} AS SELECT ${select} FROM ${quote(this.#staging)}`);
    } catch {
      // An integer beyond 64 bits, say: keep the wide types rather than fail (DuckDB's message would quote a value).
      await this.#connection.run(`CREATE TABLE ${quote(this.#name)} AS SELECT * FROM ${quote(this.#staging)}`);
    }
    await this.#connection.run(`DROP TABLE ${quote(this.#staging)}`);
  }
}

function appenderFor(a: DuckDBAppender, type: ColumnType): (cell: unknown) => void {
  switch (type) {
    case "boolean":
      return (v) => a.appendBoolean(v as boolean);
    case "integer":
      return (v) => a.appendHugeInt(typeof v === "bigint" ? v : BigInt(v as number));
    case "float":
      return (v) => a.appendDouble(v as number);
    case "bytes":
      return (v) => a.appendBlob(v as Uint8Array);
    default:
      return (v) => a.appendVarchar(v as string);
  }
}
