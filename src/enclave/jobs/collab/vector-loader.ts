/**
 * A partner's file read by DuckDB crosses as DuckDB vectors (transfer.ts): the partner announces each
 * column's DuckDB type (one of a few plain types) and sends each chunk's columns as the vectors' bytes
 * (wire-vectors.ts); the compute enclave checks every column's byte counts (and text's UTF-8), copies them
 * into a data chunk and appends it whole (into the final table, in its announced types: no per-row appends,
 * no staging table, no JavaScript value per cell).
 */
import { BIGINT, BOOLEAN, DOUBLE, DuckDBDataChunk, FLOAT, INTEGER, SMALLINT, TINYINT, VARCHAR, type DuckDBAppender, type DuckDBTypeId, type DuckDBConnection, type DuckDBType } from "@duckdb/node-api";
import type { ColumnType } from "../../connectors/index.ts";
import { checkColumn, writeColumn, type WireColumn, type WireType } from "./wire-vectors.ts";

/** The DuckDB types whose vectors cross, by name: the DuckDB type and the column type it loads as. */
const vectorTypes = {
  BOOLEAN: { duck: BOOLEAN, column: "boolean" },
  TINYINT: { duck: TINYINT, column: "integer" },
  SMALLINT: { duck: SMALLINT, column: "integer" },
  INTEGER: { duck: INTEGER, column: "integer" },
  BIGINT: { duck: BIGINT, column: "integer" },
  FLOAT: { duck: FLOAT, column: "float" },
  DOUBLE: { duck: DOUBLE, column: "float" },
  VARCHAR: { duck: VARCHAR, column: "text" },
} as const satisfies Record<WireType, { duck: DuckDBType; column: ColumnType }>;

export type VectorType = WireType;

const byTypeId: Partial<Record<DuckDBTypeId, VectorType>> = Object.fromEntries(Object.entries(vectorTypes).map(([name, t]) => [t.duck.typeId, name]));

/** A result column's vector type, or undefined when its values do not cross as vectors. */
export function vectorTypeOf(type: DuckDBType): VectorType | undefined {
  return byTypeId[type.typeId];
}

/** The column type a vector type loads as (what the partner announces beside it). */
export function columnTypeOf(type: VectorType): ColumnType {
  return vectorTypes[type].column;
}

export function isVectorType(name: unknown): name is VectorType {
  return typeof name === "string" && Object.hasOwn(vectorTypes, name);
}

/** Rows one data chunk holds (DuckDB's vector size): a larger chunk from a peer is malformed. */
export const CHUNK_ROWS = 2048;

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Loads one dataset's chunks into a table named after it, in the announced types. */
export class VectorLoader {
  readonly #appender: DuckDBAppender;
  readonly #types: readonly VectorType[];
  readonly #duck: DuckDBType[];
  rows = 0;

  private constructor(appender: DuckDBAppender, types: readonly VectorType[]) {
    this.#appender = appender;
    this.#types = types;
    this.#duck = types.map((t) => vectorTypes[t].duck);
  }

  static async begin(connection: DuckDBConnection, name: string, columns: readonly { name: string; vector: VectorType }[]): Promise<VectorLoader> {
    await connection.run(`CREATE TABLE ${quote(name)} (${columns.map((c) => `${quote(c.name)} ${c.vector}`).join(", ")})`);
    return new VectorLoader(await connection.createAppender(name), columns.map((c) => c.vector));
  }

  /**
   * Appends one chunk: `cols` has one wire column (wire-vectors.ts) of `n` rows per column, in the announced
   * types. Returns a description of what is wrong with a malformed chunk (nothing is appended then), or undefined.
   */
  append(cols: readonly unknown[], n: unknown): string | undefined {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > CHUNK_ROWS) return `a chunk of ${String(n)} rows (1..${CHUNK_ROWS})`;
    if (cols.length !== this.#types.length) return `a chunk of ${cols.length} columns, not ${this.#types.length}`;
    for (const [i, col] of cols.entries()) {
      const problem = checkColumn(col, this.#types[i]!, n);
      if (problem) return `column ${i}: ${problem}`;
    }
    const chunk = DuckDBDataChunk.create(this.#duck, n);
    for (const [i, col] of cols.entries()) writeColumn(chunk.chunk, i, col as WireColumn, n);
    this.#appender.appendDataChunk(chunk);
    this.rows += n;
    return undefined;
  }

  finish(): void {
    this.#appender.closeSync();
  }
}
