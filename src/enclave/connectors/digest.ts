import { createHash, type Hash } from "node:crypto";
import type { Cell, Column, ColumnType } from "./types.ts";

/**
 * The dataset digest: SHA-256 over a canonical, self-delimiting encoding of
 * the columns and the rows in the order they were read (docs/connectors.md,
 * "Dataset digest"). Big-endian lengths, UTF-8 text.
 *
 *   "cloister-dataset/v1\n"
 *   u32 column count, then per column: str(name) str(type)
 *   per row, per cell:
 *     0x00                      null
 *     0x01 u8(0|1)              boolean
 *     0x02 str(decimal)         integer (minus sign, no leading zeros)
 *     0x03 f64                  float (every NaN as 0x7ff8000000000000)
 *     0x04 str(text)            decimal, text, date, timestamp, json
 *     0x05 u32 len, bytes       bytes
 *   where str(s) = u32 byte length, then the UTF-8 bytes.
 *
 * Each row has exactly one cell per column, so row boundaries need no marker
 * and the row count is implied; the summary states it separately.
 */

const MAGIC = "cloister-dataset/v1\n";
const CHUNK = 64 * 1024;

export class DatasetDigest {
  readonly #hash: Hash = createHash("sha256");
  #buffer = Buffer.allocUnsafe(CHUNK);
  #used = 0;

  constructor(columns: readonly Column[]) {
    this.#text(MAGIC, false);
    this.#u32(columns.length);
    for (const column of columns) {
      this.#text(column.name, true);
      this.#text(column.type, true);
    }
  }

  addRow(row: readonly Cell[], types: readonly ColumnType[]): void {
    for (let i = 0; i < types.length; i++) this.#cell(row[i] ?? null, types[i]!);
  }

  digest(): string {
    this.#flush();
    return this.#hash.digest("hex");
  }

  #cell(cell: Cell, type: ColumnType): void {
    if (cell === null) return this.#byte(0x00);
    switch (type) {
      case "boolean":
        this.#byte(0x01);
        return this.#byte(cell ? 1 : 0);
      case "integer":
        this.#byte(0x02);
        return this.#text(String(cell), true);
      case "float": {
        this.#byte(0x03);
        this.#room(8);
        const value = Number(cell);
        if (Number.isNaN(value)) this.#buffer.writeBigUInt64BE(0x7ff8000000000000n, this.#used);
        else this.#buffer.writeDoubleBE(value, this.#used);
        this.#used += 8;
        return;
      }
      case "bytes": {
        const bytes = cell as Uint8Array;
        this.#byte(0x05);
        this.#u32(bytes.length);
        return this.#raw(bytes);
      }
      default:
        this.#byte(0x04);
        return this.#text(String(cell), true);
    }
  }

  #room(n: number): void {
    if (this.#used + n > this.#buffer.length) this.#flush();
  }

  #flush(): void {
    if (this.#used > 0) this.#hash.update(this.#buffer.subarray(0, this.#used));
    this.#buffer = Buffer.allocUnsafe(CHUNK);
    this.#used = 0;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#buffer[this.#used++] = b;
  }

  #u32(n: number): void {
    this.#room(4);
    this.#buffer.writeUInt32BE(n, this.#used);
    this.#used += 4;
  }

  #text(s: string, prefixed: boolean): void {
    const length = Buffer.byteLength(s, "utf8");
    if (prefixed) this.#u32(length);
    if (length > CHUNK / 2) return this.#raw(Buffer.from(s, "utf8"));
    this.#room(length);
    this.#used += this.#buffer.write(s, this.#used, "utf8");
  }

  #raw(bytes: Uint8Array): void {
    if (bytes.length > CHUNK / 2) {
      this.#flush();
      this.#hash.update(bytes);
      return;
    }
    this.#room(bytes.length);
    this.#buffer.set(bytes, this.#used);
    this.#used += bytes.length;
  }
}

/** The digest of a whole in-memory dataset (tests, small reads). */
export function datasetDigest(columns: readonly Column[], rows: Iterable<readonly Cell[]>): string {
  const digest = new DatasetDigest(columns);
  const types = columns.map((c) => c.type);
  for (const row of rows) digest.addRow(row, types);
  return digest.digest();
}
