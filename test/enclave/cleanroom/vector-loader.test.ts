import assert from "node:assert/strict";
import { test } from "node:test";
import { deserialize, serialize } from "node:v8";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { CHUNK_ROWS, columnTypeOf, isVectorType, VectorLoader, vectorTypeOf } from "../../../src/enclave/jobs/collab/vector-loader.ts";
import { encodeChunk } from "../../../src/enclave/jobs/collab/wire-vectors.ts";

async function connection() {
  const instance = await DuckDBInstance.create(":memory:");
  return instance.connect();
}

/** Every vector type, NULLs in each column, inline (≤ 12 bytes) and long text, unicode, empty strings; 2,500 rows (two chunks). */
const everyType = `SELECT
  CASE WHEN i % 7 = 3 THEN NULL ELSE i % 2 = 0 END AS flag,
  CASE WHEN i % 5 = 1 THEN NULL ELSE (i % 256 - 128)::TINYINT END AS tiny,
  CASE WHEN i % 6 = 2 THEN NULL ELSE (i * 13 % 65536 - 32768)::SMALLINT END AS small,
  CASE WHEN i % 8 = 4 THEN NULL ELSE (i * 7919 - 2147483648)::INTEGER END AS int,
  CASE WHEN i % 9 = 5 THEN NULL ELSE (i::BIGINT * 3037000493 - 9223372036854775807) END AS big,
  CASE WHEN i % 10 = 6 THEN NULL ELSE (i / 3)::FLOAT END AS f,
  CASE WHEN i % 11 = 7 THEN NULL ELSE i * 1.0e-3 - 1.0 END AS d,
  CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'gold' WHEN 3 THEN 'zwölf bytes!' WHEN 4 THEN repeat('ünïcødé 🐘 ', 1 + i % 5) ELSE 'row ' || i::VARCHAR END AS txt
FROM range(2500) t(i)`;

/** A partner's chunks as they cross: read by DuckDB, encoded, through v8's structured clone. */
async function wireChunks(c: DuckDBConnection, sql: string): Promise<{ n: number; cols: unknown[] }[]> {
  const result = await c.stream(sql);
  const types = result.columnTypes().map((t) => vectorTypeOf(t)!);
  const out: { n: number; cols: unknown[] }[] = [];
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    out.push(deserialize(serialize({ n: chunk.rowCount, cols: encodeChunk(chunk.chunk, chunk.rowCount, types) })) as { n: number; cols: unknown[] });
  }
  return out;
}

const columns = (["BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE", "VARCHAR"] as const).map((vector, i) => ({ name: ["flag", "tiny", "small", "int", "big", "f", "d", "txt"][i]!, vector }));

test("every vector type crosses as bytes and loads as DuckDB read it, NULLs, long and unicode text included", async () => {
  const c = await connection();
  const chunks = await wireChunks(c, everyType);
  assert.equal(chunks.length, 2);
  const loader = await VectorLoader.begin(c, "t", columns);
  for (const chunk of chunks) assert.equal(loader.append(chunk.cols, chunk.n), undefined);
  loader.finish();
  assert.equal(loader.rows, 2500);
  const types = (await c.runAndReadAll("SELECT data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position")).getRowsJS();
  assert.deepEqual(types.flat(), ["BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE", "VARCHAR"]);
  const loaded = (await c.runAndReadAll("SELECT * FROM t")).getRowsJS();
  const expected = (await c.runAndReadAll(everyType)).getRowsJS();
  assert.deepEqual(loaded, expected);
  // Equal inside DuckDB too, text included (inline strings zero-padded as DuckDB's own, so comparisons hold).
  for (const sql of [`SELECT * FROM t EXCEPT ALL ${everyType}`, `${everyType} EXCEPT ALL SELECT * FROM t`]) assert.deepEqual((await c.runAndReadAll(sql)).getRowsJS(), []);
  assert.deepEqual((await c.runAndReadAll("SELECT count(DISTINCT txt) FROM t WHERE txt = 'gold' OR txt = 'zwölf bytes!'")).getRowsJS(), [[2n]]);
});

test("a malformed chunk is refused, described, and nothing of it is appended", async () => {
  const c = await connection();
  const loader = await VectorLoader.begin(c, "t", [
    { name: "id", vector: "BIGINT" },
    { name: "name", vector: "VARCHAR" },
    { name: "flag", vector: "BOOLEAN" },
  ]);
  const good = () => ({
    n: 2,
    cols: [{ data: new Uint8Array(16) }, { text: new TextEncoder().encode("abcdé"), ends: Uint32Array.of(2, 6) }, { data: Uint8Array.of(1, 0) }] as Record<string, unknown>[],
  });
  const tamper = (f: (cols: Record<string, unknown>[]) => void, n: unknown = 2) => {
    const g = good();
    f(g.cols);
    return { cols: g.cols as unknown[], n };
  };
  const bad: [{ cols: unknown[]; n: unknown }, RegExp][] = [
    [tamper((c) => (c[0]!.data = new Uint8Array(15))), /column 0: data that is not 2 × 8 bytes/],
    [tamper((c) => (c[0]!.data = new Uint8Array(24))), /column 0: data that is not 2 × 8 bytes/],
    [tamper((c) => (c[0]!.data = new Uint16Array(8))), /column 0: data that is not/],
    [tamper((c) => (c[0]!.data = [0, 0])), /column 0: data that is not/],
    [tamper((c) => (c[0]!.valid = new Uint8Array(1))), /column 0: a validity mask that is not 8 bytes/],
    [tamper((c) => (c[0]!.valid = new Uint8Array(16))), /column 0: a validity mask that is not 8 bytes/],
    [tamper((c) => (c[2]!.data = Uint8Array.of(1, 2))), /column 2: a BOOLEAN byte other than 0 or 1/],
    [tamper((c) => (c[1]!.text = Uint8Array.of(0x61, 0x62, 0xff, 0x63, 0x64, 0x65))), /column 1: text that is not UTF-8/],
    // Valid UTF-8 as a whole, but a character split between two rows.
    [tamper((c) => (c[1]!.ends = Uint32Array.of(5, 6))), /column 1: row 1's text is not UTF-8/],
    [tamper((c) => (c[1]!.ends = Uint32Array.of(2, 7))), /column 1: row 1's text ends outside/],
    [tamper((c) => (c[1]!.ends = Uint32Array.of(3, 2))), /column 1: row 1's text ends outside/],
    [tamper((c) => (c[1]!.ends = Uint32Array.of(2, 5))), /column 1: text bytes past the last row/],
    [tamper((c) => (c[1]!.ends = Uint32Array.of(6))), /column 1: text without 2 row ends/],
    [tamper((c) => (c[1]!.ends = [2, 6])), /column 1: text without 2 row ends/],
    [tamper((c) => (c[1]!.valid = Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0))), /column 1: NULL row 1 has text/],
    [tamper((c) => (c[1] = { data: new Uint8Array(32) })), /column 1: text without 2 row ends/],
    [tamper((c) => (c[2] = null as never)), /column 2: not a column/],
    [tamper((c) => c.pop()), /a chunk of 2 columns, not 3/],
    [tamper(() => {}, 3), /column 0: data that is not 3 × 8 bytes/],
    [tamper(() => {}, 0), /a chunk of 0 rows/],
    [tamper(() => {}, 1.5), /a chunk of 1.5 rows/],
    [tamper(() => {}, "2"), /a chunk of 2 rows \(1\.\.2048\)/],
    [{ n: CHUNK_ROWS + 1, cols: [{ data: new Uint8Array((CHUNK_ROWS + 1) * 8) }, { text: new Uint8Array(0), ends: new Uint32Array(CHUNK_ROWS + 1) }, { data: new Uint8Array(CHUNK_ROWS + 1) }] }, /rows \(1\.\.2048\)/],
  ];
  for (const [{ cols, n }, problem] of bad) assert.match(loader.append(cols, n) ?? "accepted", problem);
  const ok = good();
  ok.cols[0]!.valid = Uint8Array.of(2, 0, 0, 0, 0, 0, 0, 0);
  assert.equal(loader.append(ok.cols, ok.n), undefined);
  loader.finish();
  assert.equal(loader.rows, 2);
  assert.deepEqual((await c.runAndReadAll("SELECT * FROM t")).getRowsJS(), [
    [null, "ab", true],
    [0n, "cdé", false],
  ]);
});

test("only plain DuckDB types cross as vectors, each with its column type", async () => {
  const c = await connection();
  const result = await c.runAndReadAll("SELECT 1::BIGINT, 'x', 1.5::DOUBLE, true, DATE '2026-01-01', 1.5::DECIMAL(4,2), [1]");
  assert.deepEqual(result.columnTypes().map(vectorTypeOf), ["BIGINT", "VARCHAR", "DOUBLE", "BOOLEAN", undefined, undefined, undefined]);
  assert.equal(columnTypeOf("SMALLINT"), "integer");
  assert.equal(columnTypeOf("FLOAT"), "float");
  assert.equal(isVectorType("VARCHAR"), true);
  assert.equal(isVectorType("HUGEINT"), false);
  assert.equal(isVectorType("toString"), false);
});
