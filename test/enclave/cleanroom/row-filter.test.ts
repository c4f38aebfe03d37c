import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { rowFilters } from "../../../src/enclave/jobs/collab/row-filter.ts";
import { openSources } from "../../../src/enclave/jobs/collab/transfer.ts";

test("a partner's rows are filtered by the WHERE conditions that read only its table, in a query of inner joins", async () => {
  const sql =
    "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers FROM purchases p JOIN cards c ON p.customer_id = c.customer_id, regions r WHERE c.tier = 'gold' AND p.amount > 3 AND (c.name LIKE 'a%' OR c.since IS NULL) AND c.id IN (1, 2) AND c.n BETWEEN 1 AND 9 AND c.region = r.id GROUP BY p.category HAVING count(*) > 2 ORDER BY 1 LIMIT 5";
  const filters = await rowFilters(sql, {});
  assert.equal(filters.get("cards"), "SELECT * FROM cards AS c WHERE ((c.tier = 'gold') AND ((c.\"name\" ~~ 'a%') OR (c.since IS NULL)) AND (c.id IN (1, 2)) AND (c.n BETWEEN 1 AND 9))");
  assert.equal(filters.get("purchases"), "SELECT * FROM purchases AS p WHERE (p.amount > 3)");
  // c.region = r.id reads two tables: it stays with the compute enclave, and regions gets no filter.
  assert.equal(filters.has("regions"), false);
  // One table alone: its unqualified columns are its own.
  assert.equal((await rowFilters("SELECT tier, count(*) FROM cards WHERE tier <> 'none' GROUP BY tier", {})).get("cards"), "SELECT * FROM cards WHERE (tier != 'none')");
  // A policy with pushdown: false keeps every row in the transfer.
  assert.equal((await rowFilters(sql, { pushdown: false })).size, 0);
});

test("no condition is pushed where it could change the result", async () => {
  for (const sql of [
    // outer, semi, anti, ASOF, positional, lateral and NATURAL joins, USING, subqueries, table functions
    "SELECT count(*) FROM a LEFT JOIN cards c ON a.id = c.id WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c RIGHT JOIN a ON a.id = c.id WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c FULL JOIN a ON a.id = c.id WHERE c.tier = 'gold'",
    "SELECT count(*) FROM a SEMI JOIN cards c ON a.id = c.id WHERE a.x = 1",
    "SELECT count(*) FROM a NATURAL JOIN cards c WHERE c.tier = 'gold'",
    "SELECT count(*) FROM a JOIN cards c USING (id) WHERE c.tier = 'gold'",
    "SELECT count(*) FROM a ASOF JOIN cards c ON a.id = c.id AND a.t >= c.t WHERE c.tier = 'gold'",
    "SELECT count(*) FROM a POSITIONAL JOIN cards c WHERE c.tier = 'gold'",
    "SELECT count(*) FROM (SELECT * FROM cards) c WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c, LATERAL (SELECT c.id) x WHERE c.tier = 'gold'",
    "SELECT count(*) FROM read_parquet('cards.parquet') c WHERE c.tier = 'gold'",
    // a CTE, a set operation, sampling, a column alias list, the table twice
    "WITH g AS (SELECT 1) SELECT count(*) FROM cards c WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c WHERE c.tier = 'gold' UNION ALL SELECT count(*) FROM a",
    "SELECT count(*) FROM cards c TABLESAMPLE 10% WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c WHERE c.tier = 'gold' USING SAMPLE 10",
    "SELECT count(*) FROM cards AS c(x, tier) WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards c JOIN cards d ON c.id = d.id WHERE c.tier = 'gold'",
    "SELECT count(*) FROM cards JOIN a cards ON true WHERE cards.tier = 'gold'",
    // conditions that cast, call volatile or unlisted functions, read a subquery, or are unqualified in a join
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE CAST(c.tier AS INTEGER) = 1",
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE c.score > random()",
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE abs(c.score) > 1",
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE c.id IN (SELECT id FROM a)",
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE tier = 'gold'",
    "SELECT count(*) FROM cards c JOIN a ON a.id = c.id WHERE main.c.tier = 'gold'",
    "SELECT count(*) FROM other.cards c JOIN a ON a.id = c.id WHERE c.tier = 'gold'",
  ]) {
    assert.equal((await rowFilters(sql, {})).get("cards"), undefined, sql);
  }
});

/** Deterministic rows with NULLs in every column. */
async function tables(c: DuckDBConnection) {
  await c.run("CREATE TABLE purchases AS SELECT i AS id, i % 50 AS customer_id, ['books','garden','toys'][1 + i % 3] AS category, CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37) % 100 END AS amount FROM range(600) t(i)");
  await c.run("CREATE TABLE cards AS SELECT i AS customer_id, CASE WHEN i % 7 = 0 THEN NULL WHEN i % 3 = 0 THEN 'gold' ELSE 'silver' END AS tier, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END AS name, i % 4 AS n FROM range(60) t(i)");
}

test("the approved query returns the same rows whether or not the partner's table was filtered first (NULLs included)", async () => {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    await tables(c);
    for (const sql of [
      "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category ORDER BY 1",
      "SELECT p.category, COUNT(*) AS n FROM purchases p, cards c WHERE p.customer_id = c.customer_id AND (c.tier <> 'gold' OR c.name IS NULL) AND NOT c.n IN (1, 3) GROUP BY p.category ORDER BY 1",
      "SELECT c.tier, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.name LIKE 'n1%' AND c.n BETWEEN 1 AND 2 AND p.amount > 10 GROUP BY c.tier ORDER BY 1",
      "SELECT c.tier, count(*) AS n FROM cards c WHERE upper(c.tier) IS DISTINCT FROM 'GOLD' GROUP BY c.tier ORDER BY 1",
    ]) {
      const filter = (await rowFilters(sql, {})).get("cards");
      assert.ok(filter, `a filter for ${sql}`);
      const whole = (await c.runAndReadAll(sql)).getRowsJS();
      // The partner's rows as the compute enclave would receive them: only those the filter keeps.
      await c.run(`CREATE TEMP TABLE sent AS ${filter}`);
      const kept = Number((await c.runAndReadAll("SELECT count(*) FROM sent")).getRowsJS()[0]![0]);
      assert.ok(kept < 60, `the filter drops rows: ${filter}`);
      const filtered = (await c.runAndReadAll(sql.replaceAll(/\bcards\b/g, "sent"))).getRowsJS();
      assert.deepEqual(filtered, whole, sql);
      await c.run("DROP TABLE sent");
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
});

test("a partner's file is read through its filter, and one that does not bind on the file is sent whole", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-row-filter-"));
  try {
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    await c.run(`COPY (SELECT i AS customer_id, CASE WHEN i % 3 = 0 THEN 'gold' ELSE 'silver' END AS tier FROM range(30) t(i)) TO '${join(dir, "cards.parquet")}' (FORMAT parquet)`);
    c.closeSync();
    db.closeSync();
    const read = async (filter: string) => {
      const sources = await openSources({ cards: { type: "parquet", path: "cards.parquet" } }, dir, undefined, undefined, undefined, new Map([["cards", filter]]));
      const source = sources.list[0]!;
      assert.equal(source.kind, "file");
      let rows = 0;
      if (source.kind === "file") for (let chunk = await source.result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await source.result.fetchChunk()) rows += chunk.rowCount;
      await sources.close();
      return { rows, filter: source.kind === "file" ? source.filter : undefined };
    };
    const gold = "SELECT * FROM cards AS c WHERE (c.tier = 'gold')";
    assert.deepEqual(await read(gold), { rows: 10, filter: gold });
    // A column the file does not have: the filter is dropped (the compute enclave's query reports the problem).
    assert.deepEqual(await read("SELECT * FROM cards AS c WHERE (c.missing = 1)"), { rows: 30, filter: undefined });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
