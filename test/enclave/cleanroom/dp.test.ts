/** Differential privacy under the output policy: clamping, integer noise on COUNT and SUM, the noisy threshold, and the epsilon budget. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { DuckDBConnection } from "@duckdb/node-api";
import { chargeEpsilon } from "../../../src/enclave/cleanroom/dp-budget.ts";
import { CleanRoomPolicyError } from "../../../src/enclave/cleanroom/errors.ts";
import type { CleanRoomPolicyErrorCode } from "../../../src/enclave/cleanroom/errors.ts";
import { parseOutputPolicy } from "../../../src/enclave/cleanroom/policy.ts";
import { runUnderPolicy } from "../../../src/enclave/cleanroom/run-query.ts";
import { cleanRoomDb } from "./fixture.ts";

let connection: DuckDBConnection;
let close: () => void;
before(async () => ({ connection, close } = await cleanRoomDb()));
after(() => close());

const sql = "SELECT category, COUNT(*) AS n, SUM(amount) AS total FROM purchases GROUP BY category";

function isCode(code: CleanRoomPolicyErrorCode) {
  return (e: unknown) => e instanceof CleanRoomPolicyError && e.code === code;
}

test("with a vanishing noise scale, sums are clamped to the declared bounds and the threshold still suppresses", async () => {
  // epsilon 1e6 over 3 quantities: scale 300/1e6 for the sums, noise is 0 with overwhelming probability.
  const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5, dp: { epsilon: 1e6, budget: 1e7, bounds: { amount: [0, 50] } } });
  const result = await runUnderPolicy(connection, `${sql}`, policy);
  const sorted = [...result.rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  // food amounts 10..60: the 60 is clamped to 50, so 200 not 210.
  assert.deepEqual(sorted, [
    ["books", 5n, 100n],
    ["food", 6n, 200n],
  ]);
  assert.equal(result.suppressed, 2);
  assert.deepEqual(result.noised, ["n", "total"]);
  assert.equal(result.epsilonSpent, 1e6);
});

test("at epsilon 1 the outputs are noised integers that vary between runs, and each run spends epsilon", async () => {
  const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 1, dp: { epsilon: 1, budget: 100, bounds: { amount: [0, 1000] } } });
  const seen = new Set<string>();
  let spent = 0;
  for (let run = 0; run < 30; run++) {
    const result = await runUnderPolicy(connection, `${sql}`, policy, { epsilonSpentBefore: spent });
    assert.equal(result.epsilonSpent, 1);
    assert.equal(result.epsilonTotal, spent + 1);
    spent = result.epsilonTotal;
    for (const row of result.rows) {
      assert.equal(typeof row[1], "bigint");
      assert.equal(typeof row[2], "bigint");
      assert.ok((row[1] as bigint) >= 0n, "a noised count is never negative");
    }
    const food = result.rows.find((r) => r[0] === "food");
    if (food) seen.add(`${food[1]}/${food[2]}`);
  }
  assert.ok(seen.size > 5, `expected varying noisy outputs, saw ${[...seen].join(" ")}`);
});

test("a run that would exceed the budget is refused before it runs", async () => {
  const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5, dp: { epsilon: 1, budget: 2.5, bounds: { amount: [0, 1000] } } });
  await runUnderPolicy(connection, sql, policy, { epsilonSpentBefore: 1.5 });
  const error = await runUnderPolicy(connection, sql, policy, { epsilonSpentBefore: 2 }).then(
    () => assert.fail("expected DP_BUDGET_EXCEEDED"),
    (e: unknown) => e,
  );
  assert.ok(isCode("DP_BUDGET_EXCEEDED")(error));
  assert.deepEqual((error as CleanRoomPolicyError).details, { rule: "dp budget", epsilon: 1, spentBefore: 2, budget: 2.5 });
  // A query that would fail on the data is refused for the budget, so it never ran.
  const failing = "SELECT CAST(category AS INTEGER) AS c, COUNT(*) AS n FROM purchases GROUP BY CAST(category AS INTEGER)";
  await assert.rejects(runUnderPolicy(connection, failing, policy, { epsilonSpentBefore: 2 }), isCode("DP_BUDGET_EXCEEDED"));
  await assert.rejects(runUnderPolicy(connection, failing, policy, { epsilonSpentBefore: 0 }), isCode("QUERY_FAILED"));
});

test("the ledger is exact decimal arithmetic: ten runs of 0.1 spend exactly a budget of 1", () => {
  const dp = { epsilon: 0.1, budget: 1, bounds: {} };
  let spent = 0;
  for (let i = 0; i < 10; i++) spent = chargeEpsilon(dp, spent, 2).totalAfter;
  assert.equal(spent, 1);
  assert.throws(() => chargeEpsilon(dp, spent, 2), isCode("DP_BUDGET_EXCEEDED"));
  assert.deepEqual(chargeEpsilon(dp, 0, 4).perQuantity, { n: 1n, d: 40n });
});

test("what the mechanism cannot noise is refused under DP", async () => {
  const policy = parseOutputPolicy({ identity: "customer_id", minGroupSize: 5, dp: { epsilon: 1, budget: 5, bounds: { amount: [0, 1000] } } });
  await assert.rejects(runUnderPolicy(connection, "SELECT category, AVG(amount) AS mean FROM purchases GROUP BY category", policy), (e: unknown) => isCode("DP_UNSUPPORTED")(e) && (e as CleanRoomPolicyError).details?.column === "mean");
  await assert.rejects(runUnderPolicy(connection, "SELECT category, SUM(customer_id) AS s FROM purchases GROUP BY category", policy), (e: unknown) => isCode("DP_UNSUPPORTED")(e) && (e as CleanRoomPolicyError).details?.column === "s");
  await assert.rejects(runUnderPolicy(connection, `${sql} ORDER BY n DESC`, policy), isCode("DP_UNSUPPORTED"));
  await assert.rejects(runUnderPolicy(connection, `${sql} HAVING COUNT(*) > 3`, policy), isCode("DP_UNSUPPORTED"));
  // The row-level rule still comes first.
  await assert.rejects(runUnderPolicy(connection, "SELECT customer_id, amount FROM purchases", policy), isCode("ROW_LEVEL_OUTPUT"));
});
