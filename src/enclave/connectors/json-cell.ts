import type { Cell, ColumnType } from "./types.ts";

/**
 * A cell as a JSON value, for destinations that take JSON (https, NATS): an
 * integer as a number while it is exact, else as its decimal text; bytes as
 * base64; everything else as it is.
 */
export function jsonCell(cell: Cell): unknown {
  if (typeof cell === "bigint") return Number.isSafeInteger(Number(cell)) ? Number(cell) : cell.toString();
  if (cell instanceof Uint8Array) return Buffer.from(cell).toString("base64");
  return cell;
}

/** A JSON value as a cell of `type` (the https source's rows, a program transform's output). */
export function cellFromJson(value: unknown, type: ColumnType): Cell {
  if (value === null || value === undefined) return null;
  if (type === "integer") return BigInt(value as number);
  if (type === "float") return Number(value);
  if (type === "boolean") return Boolean(value);
  if (type === "json") return JSON.stringify(value);
  return String(value);
}
