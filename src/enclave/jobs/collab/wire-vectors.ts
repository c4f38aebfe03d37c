/**
 * DuckDB vectors as bytes on the wire (transfer.ts): a partner copies each column of a chunk DuckDB read out
 * of the vector's memory, and the compute enclave, after checking every byte count, copies them into a
 * data chunk's vectors. No value becomes a JavaScript value on either side.
 *
 *   fixed width  { data, valid? }        data: rows × width bytes, DuckDB's layout (the machine's byte order:
 *                                        little-endian on every platform the bindings ship for)
 *   VARCHAR      { text, ends, valid? }  text: the rows' UTF-8 bytes back to back; ends: Uint32Array, the
 *                                        end offset of each row in text (a NULL row is empty)
 *   valid        DuckDB's validity mask: bit r of the little-endian 64-bit words set when row r is not NULL,
 *                ceil(rows / 64) × 8 bytes; absent when every row is valid
 *
 * The compute side writes into DuckDB's memory with unchecked copies, so `checkColumn` refuses any column
 * whose sizes are not exactly what the chunk needs, a BOOLEAN byte other than 0 or 1, and text that is not
 * UTF-8 row by row (DuckDB assumes valid UTF-8; the whole buffer is validated in one native call, and no row
 * may start inside a character).
 */
import { isUtf8 } from "node:buffer";
import duckdb from "@duckdb/node-bindings";

/** The DuckDB types whose vectors cross as bytes, with each value's width in the vector (VARCHAR: its 16-byte string_t). */
export const vectorWidths = { BOOLEAN: 1, TINYINT: 1, SMALLINT: 2, INTEGER: 4, BIGINT: 8, FLOAT: 4, DOUBLE: 8, VARCHAR: 16 } as const;

export type WireType = keyof typeof vectorWidths;

export interface FixedColumn {
  data: Uint8Array;
  valid?: Uint8Array;
}

export interface TextColumn {
  text: Uint8Array;
  ends: Uint32Array;
  valid?: Uint8Array;
}

export type WireColumn = FixedColumn | TextColumn;

/** Bytes of a validity mask for `rows` rows (whole 64-bit words). */
const validityBytes = (rows: number) => Math.ceil(rows / 64) * 8;

const isValid = (valid: Uint8Array | undefined, row: number) => valid === undefined || (valid[row >> 3]! & (1 << (row & 7))) !== 0;

/** DuckDB's string_t: 4 bytes of length, then up to 12 bytes inline, or a 4-byte prefix and an 8-byte pointer. */
const STRING_T = 16;
const INLINE_MAX = 12;

/** Partner side: one chunk's columns as bytes, copied out of DuckDB's vectors (the chunk may be released after). */
export function encodeChunk(chunk: duckdb.DataChunk, rows: number, types: readonly WireType[]): WireColumn[] {
  return types.map((type, i) => {
    const vector = duckdb.data_chunk_get_vector(chunk, i);
    // Null when the vector has no mask (every row valid).
    const mask = duckdb.vector_get_validity(vector, validityBytes(rows)) as Uint8Array | null;
    const valid = mask ? mask.slice() : undefined;
    const raw = duckdb.vector_get_data(vector, rows * vectorWidths[type]);
    const column: WireColumn = type === "VARCHAR" ? encodeText(raw, rows, valid) : { data: raw.slice() };
    // A NULL row's byte is whatever DuckDB left there: a boolean crosses as 0 or 1.
    if (type === "BOOLEAN") for (let r = 0; r < rows; r++) (column as FixedColumn).data[r] = (column as FixedColumn).data[r] ? 1 : 0;
    if (valid) column.valid = valid;
    return column;
  });
}

function encodeText(raw: Uint8Array, rows: number, valid: Uint8Array | undefined): TextColumn {
  // The view starts at the vector's data; the lengths are read in the machine's byte order, as DuckDB wrote them.
  const lengths = new Uint32Array(raw.buffer, raw.byteOffset, rows * 4);
  const ends = new Uint32Array(rows);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    // A NULL row's string_t is not read: its pointer may be anything.
    if (isValid(valid, r)) total += lengths[r * 4]!;
    ends[r] = total;
  }
  const text = new Uint8Array(total);
  let start = 0;
  for (let r = 0; r < rows; r++) {
    const end = ends[r]!;
    const length = end - start;
    if (length > INLINE_MAX) text.set(duckdb.get_data_from_pointer(raw.buffer as ArrayBuffer, raw.byteOffset + r * STRING_T + 8, length), start);
    else for (let k = 0, at = r * STRING_T + 4; k < length; k++) text[start + k] = raw[at + k]!;
    start = end;
  }
  return { text, ends };
}

/**
 * Compute side: what is wrong with one column of a chunk of `rows` rows as a peer sent it, or undefined when
 * its bytes fit the vector exactly.
 */
export function checkColumn(column: unknown, type: WireType, rows: number): string | undefined {
  if (typeof column !== "object" || column === null) return "not a column";
  const { valid } = column as { valid?: unknown };
  if (valid !== undefined && !(valid instanceof Uint8Array && valid.byteLength === validityBytes(rows))) return `a validity mask that is not ${validityBytes(rows)} bytes`;
  if (type === "VARCHAR") return checkText(column as Partial<TextColumn>, rows);
  const { data } = column as { data?: unknown };
  if (!(data instanceof Uint8Array) || data.byteLength !== rows * vectorWidths[type]) return `data that is not ${rows} × ${vectorWidths[type]} bytes`;
  if (type === "BOOLEAN" && data.some((b) => b > 1)) return "a BOOLEAN byte other than 0 or 1";
  return undefined;
}

function checkText({ text, ends, valid }: Partial<TextColumn>, rows: number): string | undefined {
  if (!(text instanceof Uint8Array) || !(ends instanceof Uint32Array) || ends.length !== rows) return `text without ${rows} row ends`;
  let start = 0;
  for (let r = 0; r < rows; r++) {
    const end = ends[r]!;
    if (end < start || end > text.byteLength) return `row ${r}'s text ends outside the column's bytes`;
    if (end > start && !isValid(valid, r)) return `NULL row ${r} has text`;
    // The whole buffer is checked as UTF-8 below; a row must not start inside another row's character.
    if (end > start && (text[start]! & 0xc0) === 0x80) return `row ${r}'s text is not UTF-8`;
    start = end;
  }
  if (start !== text.byteLength) return "text bytes past the last row";
  if (!isUtf8(text)) return "text that is not UTF-8";
  return undefined;
}

/** Compute side: copies a checked column (`checkColumn`) into a chunk's vector of its type. */
export function writeColumn(chunk: duckdb.DataChunk, index: number, column: WireColumn, rows: number): void {
  const vector = duckdb.data_chunk_get_vector(chunk, index);
  if (column.valid) {
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(vector, 0, column.valid.buffer as ArrayBuffer, column.valid.byteOffset, column.valid.byteLength);
  }
  if ("data" in column) {
    duckdb.copy_data_to_vector(vector, 0, column.data.buffer as ArrayBuffer, column.data.byteOffset, column.data.byteLength);
    return;
  }
  // Short strings are built inline as string_t and copied at once; longer ones DuckDB copies into its heap.
  const { text, ends } = column;
  const structs = new Uint8Array(rows * STRING_T);
  const lengths = new Uint32Array(structs.buffer);
  const long: number[] = [];
  let start = 0;
  for (let r = 0; r < rows; r++) {
    const end = ends[r]!;
    const length = end - start;
    if (length > INLINE_MAX) long.push(r);
    else {
      lengths[r * 4] = length;
      for (let k = 0, at = r * STRING_T + 4; k < length; k++) structs[at + k] = text[start + k]!;
    }
    start = end;
  }
  duckdb.copy_data_to_vector(vector, 0, structs.buffer, 0, structs.byteLength);
  for (const r of long) duckdb.vector_assign_string_element_len(vector, r, text.subarray(r === 0 ? 0 : ends[r - 1]!, ends[r]!));
}
