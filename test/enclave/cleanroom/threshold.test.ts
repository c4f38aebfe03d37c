/** The aggregation threshold: groups with fewer than minGroupSize distinct identities are suppressed, counted, and never returned. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { DuckDBConnection } from "@duckdb/node-api";
import { augmentedSql } from "../../../src/enclave/cleanroom/augment.ts";
import { CleanRoomPolicyError } from "../../../src/enclave/cleanroom/errors.ts";
import { parseOutputPolicy } from "../../../src/enclave/cleanroom/policy.ts";
import { checkQuery } from "../../../src/enclave/cleanroom/query-check.ts";
import { runUnderPolicy } from "../../../src/enclave/cleanroom/run-query.ts";
import { cleanRoomDb } from "./fixture.ts";

let connection: DuckDBConnection;
let close: () => void;
before(async () => ({ connection, close } = await cleanRoomDb()));
after(() => close());

const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5 });

test("an allowed aggregate query returns only groups of at least minGroupSize distinct identities", async () => {
  const result = await runUnderPolicy(connection, "SELECT category, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean FROM purchases GROUP BY category ORDER BY category", policy);
  assert.deepEqual(result.columns, ["category", "n", "total", "mean"]);
  // books has exactly 5 customers (kept); garden has 12 rows but 4 customers, toys 1 (both suppressed).
  assert.deepEqual(result.rows, [
    ["books", 5n, 100n, 20],
    ["food", 6n, 210n, 35],
  ]);
  assert.equal(result.suppressed, 2);
  assert.equal(result.epsilonSpent, 0);
  assert.deepEqual(result.noised, []);
  // The canary amount of the lone toys buyer is in no delivered value.
  assert.ok(!JSON.stringify(result.rows, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)).includes("4242"));
});

test("the threshold counts distinct identities, so a raised threshold suppresses exactly the smaller groups", async () => {
  const six = await runUnderPolicy(connection, "SELECT category, COUNT(DISTINCT customer_id) AS customers FROM purchases GROUP BY category", parseOutputPolicy({ identity: "customer_id", minGroupSize: 6 }));
  assert.deepEqual(six.rows, [["food", 6n]]);
  assert.equal(six.suppressed, 3);
  const one = await runUnderPolicy(connection, "SELECT category, COUNT(DISTINCT customer_id) AS customers FROM purchases GROUP BY category ORDER BY category", parseOutputPolicy({ identity: "customer_id", minGroupSize: 1 }));
  assert.equal(one.rows.length, 4);
  assert.equal(one.suppressed, 0);
});

test("grouping by the identity itself delivers nothing: every group is one customer", async () => {
  const result = await runUnderPolicy(connection, "SELECT customer_id, SUM(amount) AS total FROM purchases GROUP BY customer_id", policy);
  assert.deepEqual(result.rows, []);
  assert.equal(result.suppressed, 16);
});

test("a join: the group size is the least distinct identity count over the joined tables", async () => {
  const sql = "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category ORDER BY p.category";
  const augmented = await augmentedSql(connection, await checkQuery(connection, sql, policy), policy);
  assert.match(augmented, /least\(count\(DISTINCT p\.customer_id\), count\(DISTINCT c\.customer_id\)\) AS __cloister_identities/);
  // Gold (even ids): food 2,4,6 (3), books 12,14 (2), garden 20,22 (2), all below 5.
  const result = await runUnderPolicy(connection, sql, policy);
  assert.deepEqual(result.rows, []);
  assert.equal(result.suppressed, 3);
  const lower = await runUnderPolicy(connection, sql, parseOutputPolicy({ identity: "customer_id", minGroupSize: 3 }));
  assert.deepEqual(lower.rows, [["food", 3n, 120n]]);
  assert.equal(lower.suppressed, 2);
});

test("a qualified identity is used as written; an identity no table has is refused", async () => {
  const sql = "SELECT c.tier, COUNT(*) AS n FROM purchases p JOIN cards c ON p.customer_id = c.customer_id GROUP BY c.tier ORDER BY c.tier";
  const qualified = parseOutputPolicy({ identity: "c.customer_id", minGroupSize: 5 });
  assert.match(await augmentedSql(connection, await checkQuery(connection, sql, qualified), qualified), /, count\(DISTINCT c\.customer_id\) AS __cloister_identities/);
  const result = await runUnderPolicy(connection, sql, qualified);
  assert.deepEqual(result.rows, [["gold", 11n], ["silver", 13n]]);
  await assert.rejects(
    runUnderPolicy(connection, "SELECT tier, COUNT(*) FROM cards GROUP BY tier", parseOutputPolicy({ identity: "account_id", minGroupSize: 5 })),
    (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "IDENTITY_NOT_FOUND" && e.details?.column === "account_id",
  );
});

test("an unqualified identity must be in every joined table: a table without it could carry one person's values", async () => {
  await connection.run("CREATE TABLE salaries (emp VARCHAR, salary INTEGER)");
  await connection.run("INSERT INTO salaries VALUES ('bob', 123456)");
  const sql = "SELECT p.category, SUM(s.salary) AS s FROM purchases p CROSS JOIN salaries s WHERE s.emp = 'bob' GROUP BY p.category";
  await assert.rejects(runUnderPolicy(connection, sql, policy), (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "IDENTITY_NOT_FOUND" && e.details?.table === "salaries");
  const joined = await runUnderPolicy(connection, "SELECT tier, COUNT(*) AS n FROM purchases JOIN cards USING (customer_id) GROUP BY tier ORDER BY tier", policy);
  assert.deepEqual(joined.rows, [["gold", 11n], ["silver", 13n]]);
});

test("a whole-table aggregate is one group and obeys the threshold too", async () => {
  const all = await runUnderPolicy(connection, "SELECT COUNT(*) AS n FROM purchases", policy);
  assert.deepEqual(all.rows, [[24n]]);
  const one = await runUnderPolicy(connection, "SELECT SUM(amount) AS s FROM purchases WHERE customer_id = 99", policy);
  assert.deepEqual(one.rows, []);
  assert.equal(one.suppressed, 1);
});

test("a row-level query is refused before it runs", async () => {
  await assert.rejects(runUnderPolicy(connection, "SELECT customer_id, amount FROM purchases", policy), (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "ROW_LEVEL_OUTPUT" && e.details?.column === "customer_id");
});

test("a query that fails on the data fails with a typed error that quotes no row value", async () => {
  const error = await runUnderPolicy(connection, "SELECT CAST(category AS INTEGER) AS c, COUNT(*) AS n FROM purchases GROUP BY CAST(category AS INTEGER)", policy).then(
    () => assert.fail("expected QUERY_FAILED"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CleanRoomPolicyError && error.code === "QUERY_FAILED");
  const published = JSON.stringify(error.toJSON()) + String(error.stack);
  for (const value of ["food", "books", "garden", "toys"]) assert.ok(!published.includes(value), `the error quotes ${value}`);
  assert.equal(error.cause, undefined);
});
