/**
 * A partner's file read by DuckDB crosses as DuckDB vectors (transfer.ts): the partner announces each
 * column's DuckDB type (one of a few plain types), sends each chunk's columns as plain JS values, and the
 * compute enclave checks every value's JS type and appends the chunk whole (DuckDB data chunks into the
 * final table, in its announced types: no per-row appends, no staging table).
 */
import { BIGINT, BOOLEAN, DOUBLE, DuckDBDataChunk, FLOAT, INTEGER, SMALLINT, TINYINT, VARCHAR, type DuckDBAppender, type DuckDBTypeId, type DuckDBConnection, type DuckDBType } from "@duckdb/node-api";
import type { ColumnType } from "../../connectors/index.ts";

/** The DuckDB types whose vectors cross, by name: the DuckDB type, the column type it loads as, the JS type of its values. */
const vectorTypes = {
  BOOLEAN: { duck: BOOLEAN, column: "boolean", js: "boolean" },
  TINYINT: { duck: TINYINT, column: "integer", js: "number" },
  SMALLINT: { duck: SMALLINT, column: "integer", js: "number" },
  INTEGER: { duck: INTEGER, column: "integer", js: "number" },
  BIGINT: { duck: BIGINT, column: "integer", js: "bigint" },
  FLOAT: { duck: FLOAT, column: "float", js: "number" },
  DOUBLE: { duck: DOUBLE, column: "float", js: "number" },
  VARCHAR: { duck: VARCHAR, column: "text", js: "string" },
} as const satisfies Record<string, { duck: DuckDBType; column: ColumnType; js: "boolean" | "number" | "bigint" | "string" }>;

export type VectorType = keyof typeof vectorTypes;

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
   * Appends one chunk: `cols` has one array of `n` values per column, each null or of its column's JS type.
   * Returns a description of what is wrong with a malformed chunk (nothing is appended then), or undefined.
   */
  append(cols: readonly unknown[], n: number): string | undefined {
    if (!Number.isInteger(n) || n < 1 || n > CHUNK_ROWS) return `a chunk of ${String(n)} rows (1..${CHUNK_ROWS})`;
    if (cols.length !== this.#types.length) return `a chunk of ${cols.length} columns, not ${this.#types.length}`;
    for (const [i, col] of cols.entries()) {
      if (!Array.isArray(col) || col.length !== n) return `column ${i} is not an array of ${n} values`;
      const js = vectorTypes[this.#types[i]!].js;
      for (const v of col as unknown[]) if (v !== null && typeof v !== js) return `column ${i} holds a value that is not a ${js}`;
    }
    const chunk = DuckDBDataChunk.create(this.#duck, n);
    try {
      chunk.setColumns(cols as never);
    } catch {
      // An integer out of its type's range, say; DuckDB's message would quote the value.
      return "a value out of its column type's range";
    }
    this.#appender.appendDataChunk(chunk);
    this.rows += n;
    return undefined;
  }

  finish(): void {
    this.#appender.closeSync();
  }
}
