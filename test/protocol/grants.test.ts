import { test } from "node:test";
import assert from "node:assert/strict";
import { keccak256, sha256, stringToBytes } from "viem";
import { GRANT_OPERATIONS, GrantTermsError, datasetId, operationsMask, operationsOf, statementDigest } from "../../src/protocol/grants.ts";

test("the statement digest is SHA-256 over the domain tag, a zero byte and the bytes", () => {
  const sql = "DELETE FROM customers WHERE id = 42 -- Zoë";
  assert.equal(statementDigest(sql), sha256(new TextEncoder().encode(`cloister/grant-statement/v1\0${sql}`)));
  assert.equal(statementDigest(new TextEncoder().encode(sql)), statementDigest(sql));
  assert.notEqual(statementDigest(sql), statementDigest(`${sql} `));
});

test("a dataset named by the owner is keccak256 of its name", () => {
  assert.equal(datasetId("crm.customers"), keccak256(stringToBytes("crm.customers")));
  assert.notEqual(datasetId("crm.customers"), datasetId("crm.Customers"));
});

test("operation masks round-trip and unknown operations are refused", () => {
  assert.equal(operationsMask([]), 0);
  assert.equal(operationsMask(["read", "insert", "update", "delete"]), 15);
  assert.equal(operationsMask(["update", "update"]), GRANT_OPERATIONS.update);
  for (let mask = 0; mask < 16; mask++) assert.equal(operationsMask(operationsOf(mask)), mask);
  for (const bad of ["drop", "READ", "toString", "__proto__"]) {
    assert.throws(() => operationsMask([bad]), (err: unknown) => err instanceof GrantTermsError && err.code === "INVALID_GRANT_OPERATION", bad);
  }
});
