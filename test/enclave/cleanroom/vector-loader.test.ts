import assert from "node:assert/strict";
import { test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { CHUNK_ROWS, columnTypeOf, isVectorType, VectorLoader, vectorTypeOf } from "../../../src/enclave/jobs/collab/vector-loader.ts";

async function connection() {
  const instance = await DuckDBInstance.create(":memory:");
  return instance.connect();
}

test("chunks load whole into a table in the announced DuckDB types, nulls included", async () => {
  const c = await connection();
  const loader = await VectorLoader.begin(c, "cards", [
    { name: "customer_id", vector: "BIGINT" },
    { name: "tier", vector: "VARCHAR" },
    { name: "score", vector: "INTEGER" },
    { name: "weight", vector: "DOUBLE" },
    { name: "active", vector: "BOOLEAN" },
  ]);
  assert.equal(
    loader.append(
      [
        [1n, 2n, null],
        ["gold", null, "silver"],
        [7, 8, 9],
        [0.5, null, 2.25],
        [true, false, null],
      ],
      3,
    ),
    undefined,
  );
  assert.equal(loader.append([[9007199254740993n], ["bronze"], [null], [1], [true]], 1), undefined);
  loader.finish();
  assert.equal(loader.rows, 4);
  const types = (await c.runAndReadAll("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'cards' ORDER BY ordinal_position")).getRowsJS();
  assert.deepEqual(types, [
    ["customer_id", "BIGINT"],
    ["tier", "VARCHAR"],
    ["score", "INTEGER"],
    ["weight", "DOUBLE"],
    ["active", "BOOLEAN"],
  ]);
  const rows = (await c.runAndReadAll("SELECT * FROM cards ORDER BY customer_id NULLS LAST")).getRowsJS();
  assert.deepEqual(rows, [
    [1n, "gold", 7, 0.5, true],
    [2n, null, 8, null, false],
    [9007199254740993n, "bronze", null, 1, true],
    [null, "silver", 9, 2.25, null],
  ]);
});

test("a malformed chunk is described and nothing of it is appended", async () => {
  const c = await connection();
  const loader = await VectorLoader.begin(c, "t", [
    { name: "id", vector: "BIGINT" },
    { name: "name", vector: "VARCHAR" },
  ]);
  const bad: [unknown[], number, RegExp][] = [
    [[[1], ["a"]], 2, /column 0 is not an array of 2 values/],
    [[[1n]], 1, /1 columns, not 2/],
    [[[1], ["a"]], 1, /column 0 holds a value that is not a bigint/],
    [[[1n], [5]], 1, /column 1 holds a value that is not a string/],
    [[[2n ** 64n], ["a"]], 1, /out of its column type's range/],
    [[[], []], 0, /a chunk of 0 rows/],
    [[Array(CHUNK_ROWS + 1).fill(1n), Array(CHUNK_ROWS + 1).fill("a")], CHUNK_ROWS + 1, /rows \(1\.\.2048\)/],
    [["not an array", ["a"]], 1, /column 0 is not an array/],
  ];
  for (const [cols, n, problem] of bad) assert.match(loader.append(cols, n) ?? "accepted", problem);
  assert.equal(loader.append([[5n], ["ok"]], 1), undefined);
  loader.finish();
  assert.equal(loader.rows, 1);
  assert.deepEqual((await c.runAndReadAll("SELECT * FROM t")).getRowsJS(), [[5n, "ok"]]);
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
