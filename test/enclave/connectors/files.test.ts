import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { collect, ConnectorError, datasetDigest, openDataset } from "../../../src/enclave/connectors/index.ts";

const dir = mkdtempSync(join(tmpdir(), "cloister-connectors-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const csv = "id,customer,amount,note\n1,alice,10.5,hi\n2,bob,20,\n3,alice,7.25,\"a, b\"\n";
writeFileSync(join(dir, "purchases.csv"), csv);

async function writeParquet(path: string, rows: number): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  await connection.run(`COPY (SELECT i::BIGINT AS id, 'c' || (i % 3) AS customer, (i * 1.5)::DOUBLE AS amount, i % 2 = 0 AS even FROM range(1, ${rows + 1}) t(i)) TO '${path}' (FORMAT parquet)`);
  connection.closeSync();
  instance.closeSync();
}

test("csv: typed columns, rows, count and the digest of exactly those rows", async () => {
  const read = await collect(await openDataset({ type: "csv", path: "purchases.csv" }, { baseDir: dir }));
  assert.deepEqual(read.columns, [
    { name: "id", type: "integer" },
    { name: "customer", type: "text" },
    { name: "amount", type: "float" },
    { name: "note", type: "text" },
  ]);
  assert.deepEqual(read.rows, [
    [1n, "alice", 10.5, "hi"],
    [2n, "bob", 20, null],
    [3n, "alice", 7.25, "a, b"],
  ]);
  assert.equal(read.rowCount, 3);
  assert.equal(read.digest, datasetDigest(read.columns, read.rows));
  assert.equal(read.cursor, undefined);
});

test("parquet: batches stream, and a cursor read returns only rows past it", async () => {
  const path = join(dir, "orders.parquet");
  await writeParquet(path, 2_500);
  const reader = await openDataset({ type: "parquet", path, cursor: "id" }, { batchSize: 1_000 });
  const sizes: number[] = [];
  for await (const batch of reader) sizes.push(batch.length);
  assert.deepEqual(sizes, [1_000, 1_000, 500]);
  const first = reader.summary();
  assert.equal(first.rowCount, 2_500);
  assert.equal(first.cursor, "2500");
  assert.deepEqual(first.columns.map((c) => c.type), ["integer", "text", "float", "boolean"]);

  const after = await collect(await openDataset({ type: "parquet", path, cursor: "id" }, { after: "2497" }));
  assert.deepEqual(after.rows.map((r) => r[0]), [2498n, 2499n, 2500n]);
  assert.equal(after.cursor, "2500");
  const none = await collect(await openDataset({ type: "parquet", path, cursor: "id" }, { after: "2500" }));
  assert.equal(none.rowCount, 0);
  assert.equal(none.cursor, "2500", "an empty read keeps the cursor it was given");
});

test("the summary is refused until the batches are read", async () => {
  const reader = await openDataset({ type: "csv", path: join(dir, "purchases.csv") });
  assert.throws(() => reader.summary(), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_NOT_FINISHED");
  await reader.close();
});

test("file errors say what to fix", async () => {
  await assert.rejects(openDataset({ type: "csv", path: "missing.csv" }, { baseDir: dir }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_FILE_NOT_FOUND" && e.message.includes(join(dir, "missing.csv")));
  await assert.rejects(openDataset({ type: "csv", path: join(dir, "purchases.csv"), cursor: "ts" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_CURSOR_COLUMN_MISSING" && /id, customer, amount, note/.test(e.message));
  await assert.rejects(openDataset({ type: "csv", path: join(dir, "purchases.csv") }, { after: "1" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_CURSOR");
  await assert.rejects(openDataset({ type: "csv", path: join(dir, "purchases.csv"), cursor: "id" }, { after: "not-a-number" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_CURSOR");
});
