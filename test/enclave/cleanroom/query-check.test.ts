/** The output policy's query check refuses row-level and unprovable queries before any data is read, naming the rule and column. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DuckDBInstance } from "@duckdb/node-api";
import type { DuckDBConnection } from "@duckdb/node-api";
import { CleanRoomPolicyError } from "../../../src/enclave/cleanroom/errors.ts";
import type { CleanRoomPolicyErrorCode } from "../../../src/enclave/cleanroom/errors.ts";
import { parseOutputPolicy } from "../../../src/enclave/cleanroom/policy.ts";
import { checkQuery } from "../../../src/enclave/cleanroom/query-check.ts";

// No tables exist: the check reads only the SQL text, never data.
let instance: DuckDBInstance;
let connection: DuckDBConnection;
before(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
});
after(() => {
  connection.closeSync();
  instance.closeSync();
});

const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5 });

async function refused(sql: string, code: CleanRoomPolicyErrorCode, column?: string, p = policy): Promise<CleanRoomPolicyError> {
  const error = await checkQuery(connection, sql, p).then(
    () => assert.fail(`expected ${code} for: ${sql}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CleanRoomPolicyError, `expected CleanRoomPolicyError, got ${String(error)}`);
  assert.equal(error.code, code, `${sql}: ${error.message}`);
  assert.equal(typeof error.details?.rule, "string");
  if (column !== undefined) assert.equal(error.details?.column, column);
  return error;
}

test("an aggregate query over a join passes and its output columns are classified", async () => {
  const checked = await checkQuery(
    connection,
    "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total, AVG(p.amount), COUNT(*) AS n FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category ORDER BY total DESC LIMIT 10",
    policy,
  );
  assert.deepEqual(
    checked.columns.map((c) => (c.kind === "key" ? ["key", c.name] : [c.aggregate, c.name, c.distinct, c.column])),
    [["key", "p.category"], ["count", "customers", true, "customer_id"], ["sum", "total", false, "amount"], ["avg", "avg(...)", false, "amount"], ["count_star", "n", false, undefined]],
  );
  assert.deepEqual(checked.tables, [{ table: "purchases", reference: "p" }, { table: "cards", reference: "c" }]);
});

test("GROUP BY by position and a scalar key expression pass", async () => {
  await checkQuery(connection, "SELECT category, count(*) FROM purchases GROUP BY 1", policy);
  await checkQuery(connection, "SELECT upper(category) AS cat, sum(amount) FROM purchases GROUP BY upper(category)", policy);
});

test("row-level output is refused naming the column", async () => {
  await refused("SELECT customer_id FROM purchases", "ROW_LEVEL_OUTPUT", "customer_id");
  await refused("SELECT * FROM purchases", "ROW_LEVEL_OUTPUT", "*");
  await refused("SELECT category, amount, count(*) FROM purchases GROUP BY category", "ROW_LEVEL_OUTPUT", "amount");
  await refused("SELECT category, amount + 1 AS a FROM purchases GROUP BY category", "ROW_LEVEL_OUTPUT", "a");
  await refused("SELECT DISTINCT customer_id FROM purchases", "ROW_LEVEL_OUTPUT", "customer_id");
});

test("MIN and MAX are refused unless the policy lists them", async () => {
  const e = await refused("SELECT category, MAX(amount) AS top FROM purchases GROUP BY category", "AGGREGATE_NOT_ALLOWED", "top");
  assert.match(e.message, /MAX/);
  await refused("SELECT category, min(amount) FROM purchases GROUP BY category", "AGGREGATE_NOT_ALLOWED", "min(...)");
  await refused("SELECT category, list(customer_id) AS ids FROM purchases GROUP BY category", "AGGREGATE_NOT_ALLOWED", "ids");
  await refused("SELECT category FROM purchases GROUP BY category HAVING max(amount) > 10", "AGGREGATE_NOT_ALLOWED");
  const wider = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5, allowedAggregates: ["min", "max"] });
  await checkQuery(connection, "SELECT category, MAX(amount) AS top FROM purchases GROUP BY category", wider);
});

test("window functions are refused", async () => {
  await refused("SELECT category, sum(amount) OVER (PARTITION BY category) AS s FROM purchases GROUP BY category", "WINDOW_FUNCTION", "s");
  await refused("SELECT row_number() OVER () AS r FROM purchases", "WINDOW_FUNCTION", "r");
  await refused("SELECT category, count(*) FROM purchases GROUP BY category QUALIFY row_number() OVER () = 1", "UNSUPPORTED_QUERY");
  await refused("SELECT category, count(*) FROM purchases GROUP BY category ORDER BY row_number() OVER ()", "WINDOW_FUNCTION");
});

test("what cannot be proved aggregate is refused", async () => {
  await refused("SELECT category, count(*) FROM (SELECT * FROM purchases) GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("WITH t AS (SELECT * FROM purchases) SELECT category, count(*) FROM t GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("SELECT category, count(*) FROM purchases WHERE customer_id IN (SELECT customer_id FROM cards) GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("SELECT category, count(*) FROM read_csv('/etc/passwd') GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("SELECT count(*) FROM purchases UNION ALL SELECT count(*) FROM cards", "UNSUPPORTED_QUERY");
  await refused("SELECT category, count(*) FROM purchases GROUP BY ROLLUP (category)", "UNSUPPORTED_QUERY");
  await refused("SELECT category, count(*) FROM purchases GROUP BY ALL", "UNSUPPORTED_QUERY");
  await refused("SELECT category, sum(CASE WHEN customer_id = 7 THEN amount END) AS s FROM purchases GROUP BY category", "UNSUPPORTED_QUERY", "s");
  await refused("SELECT category, count(*) FILTER (WHERE customer_id = 7) AS n FROM purchases GROUP BY category", "UNSUPPORTED_QUERY", "n");
  await refused("SELECT category, sum(amount) / count(*) AS mean FROM purchases GROUP BY category", "UNSUPPORTED_QUERY", "mean");
  await refused("SELECT category, count(*) AS __cloister_identities FROM purchases GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("DELETE FROM purchases", "UNSUPPORTED_QUERY");
  await refused("SELECT count(*) FROM purchases; SELECT count(*) FROM cards", "UNSUPPORTED_QUERY");
  await refused("SELEC nonsense", "QUERY_PARSE_FAILED");
  await refused("SELECT category, count(*) FROM purchases WHERE CASE WHEN amount = 4242 THEN error('x') ELSE true END GROUP BY category", "UNSUPPORTED_QUERY");
  await refused("SELECT my_macro(category) AS m, count(*) FROM purchases GROUP BY my_macro(category)", "UNSUPPORTED_QUERY");
});

test("a malformed policy is a typed error", () => {
  assert.throws(() => parseOutputPolicy({ identity: "customer_id" }), (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "POLICY_INVALID");
  assert.throws(() => parseOutputPolicy({ identity: "x; DROP", minGroupSize: 5 }), (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "POLICY_INVALID");
  assert.throws(
    () => parseOutputPolicy({ identity: "customer_id", minGroupSize: 5, dp: { epsilon: 2, budget: 1, bounds: {} } }),
    (e: unknown) => e instanceof CleanRoomPolicyError && e.code === "POLICY_INVALID",
  );
});
