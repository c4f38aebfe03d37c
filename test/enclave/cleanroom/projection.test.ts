import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { namedColumns } from "../../../src/enclave/jobs/collab/projection.ts";
import { parseOutputPolicy } from "../../../src/enclave/cleanroom/policy.ts";
import { openSources } from "../../../src/enclave/jobs/collab/transfer.ts";

const policy = parseOutputPolicy({ identity: "p.customer_id", minGroupSize: 5 });
const sorted = (s: ReadonlySet<string> | undefined) => (s ? [...s].sort() : undefined);

test("a partner's file sends the columns the query and the policy name, qualifiers and USING columns included", async () => {
  const sql = "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN cards t1 ON p.customer_id = t1.customer_id WHERE t1.Tier = 'gold' GROUP BY p.category";
  assert.deepEqual(sorted(await namedColumns(sql, policy)), ["amount", "category", "customer_id", "p", "t1", "tier"]);
  const using = await namedColumns("SELECT region, count(*) FROM a JOIN b USING (zip) GROUP BY region", parseOutputPolicy({ identity: "person", minGroupSize: 5, dp: { epsilon: 1, budget: 2, bounds: { spend: [0, 10] } } }));
  assert.deepEqual(sorted(using), ["person", "region", "spend", "zip"]);
  // A struct field's column and a subquery's columns are named too.
  assert.deepEqual(sorted(await namedColumns("SELECT s.addr.city, count(*) FROM (SELECT addr FROM a) s GROUP BY 1", policy)), ["addr", "city", "customer_id", "p", "s"]);
});

test("a query that reads columns it does not name sends every column", async () => {
  for (const sql of [
    "SELECT * FROM a",
    "FROM a",
    "SELECT a.* FROM a",
    "SELECT COLUMNS('x.*') FROM a",
    "SELECT * EXCLUDE (x) FROM a",
    "SELECT #1, count(*) FROM a GROUP BY 1",
    "SELECT count(*) FROM a NATURAL JOIN b",
    "SELECT t1, count(*) FROM a t1 GROUP BY t1",
    "SELECT main.a, count(*) FROM a GROUP BY 1",
    "SELECT x, count(*) FROM (SELECT * FROM a) s GROUP BY x",
    "SELECT x, count(*) FROM read_parquet('a.parquet') GROUP BY x",
    "SELECT x, count(*) FROM query_table('a') GROUP BY x",
  ]) {
    assert.equal(await namedColumns(sql, policy), undefined, sql);
  }
});

test("a partner's file is read with only the named columns, or every column when it has none of them", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-projection-"));
  try {
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    await c.run(`COPY (SELECT 1::BIGINT AS customer_id, 'gold' AS Tier, 'secret' AS notes) TO '${join(dir, "cards.parquet")}' (FORMAT parquet)`);
    c.closeSync();
    db.closeSync();
    const open = async (columns?: ReadonlySet<string>) => {
      const sources = await openSources({ cards: { type: "parquet", path: "cards.parquet" } }, dir, undefined, columns);
      const names = sources.list[0]!.columns.map((x) => x.name);
      await sources.close();
      return names;
    };
    assert.deepEqual(await open(new Set(["customer_id", "tier", "p"])), ["customer_id", "Tier"]);
    assert.deepEqual(await open(new Set(["other"])), ["customer_id", "Tier", "notes"]);
    assert.deepEqual(await open(undefined), ["customer_id", "Tier", "notes"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
