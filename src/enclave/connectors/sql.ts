import { ConnectorError } from "./errors.ts";
import { redactUrl } from "./redact.ts";
import type { Column } from "./types.ts";
import { columnIndex } from "./reader.ts";

/** The SELECT a database descriptor reads, shared by the postgres and mysql connectors. */

export interface SqlSource {
  url: string;
  table?: string | undefined;
  query?: string | undefined;
  cursor?: string | undefined;
}

/** `schema.table` with each part quoted by `quote`. */
export function quoteTable(table: string, quote: (part: string) => string): string {
  return table.split(".").map(quote).join(".");
}

export function baseSelect(source: SqlSource, quote: (part: string) => string): string {
  return source.table !== undefined ? `SELECT * FROM ${quoteTable(source.table, quote)}` : `SELECT * FROM (${source.query}) AS cloister_source`;
}

export function sourceName(source: SqlSource): string {
  return source.table !== undefined ? `table ${source.table}` : "the descriptor's query";
}

/** The cursor column's index, or the typed error saying which columns exist. */
export function cursorIndexOf(source: SqlSource, columns: readonly Column[]): number | undefined {
  if (source.cursor === undefined) return undefined;
  const index = columnIndex(columns, source.cursor);
  if (index === undefined) {
    throw new ConnectorError("CONNECTOR_CURSOR_COLUMN_MISSING", `cursor column "${source.cursor}" is not in ${sourceName(source)}; its columns are ${columns.map((c) => c.name).join(", ")}`, {
      details: { url: redactUrl(source.url), cursor: source.cursor, columns: columns.map((c) => c.name) },
    });
  }
  return index;
}

/** `sql` restricted to rows past `afterLiteral` (already a quoted SQL literal) and ordered by the cursor. */
export function incrementalSelect(select: string, cursorColumn: string, quote: (part: string) => string, afterLiteral: string | undefined): string {
  const col = quote(cursorColumn);
  const where = afterLiteral === undefined ? `${col} IS NOT NULL` : `${col} > ${afterLiteral}`;
  return `SELECT * FROM (${select}) AS cloister_cursor WHERE ${where} ORDER BY ${col}`;
}
