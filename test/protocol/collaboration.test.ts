import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256 } from "viem";
import { CollaborationTermsError, epsilonFromFixed, epsilonToFixed, queryDigest } from "../../src/protocol/collaboration.ts";

test("epsilon converts exactly to and from the chain's millionths", () => {
  assert.equal(epsilonToFixed("1"), 1_000_000n);
  assert.equal(epsilonToFixed("0.5"), 500_000n);
  assert.equal(epsilonToFixed(1.25), 1_250_000n);
  assert.equal(epsilonToFixed("0.000001"), 1n);
  assert.equal(epsilonToFixed(" 0 "), 0n);
  for (const fixed of [0n, 1n, 500_000n, 1_250_000n, 12_000_000n, 2n ** 64n - 1n]) assert.equal(epsilonToFixed(epsilonFromFixed(fixed)), fixed);
  assert.equal(epsilonFromFixed(1_250_000n), "1.25");
  assert.equal(epsilonFromFixed(3_000_000n), "3");
});

test("epsilon that the chain cannot hold exactly is refused, not rounded", () => {
  for (const bad of ["0.0000001", "-1", "1e-3", "", "abc", Number.NaN, Number.POSITIVE_INFINITY, 1e-7, "18446744073709.551616"]) {
    assert.throws(() => epsilonToFixed(bad), (err: unknown) => err instanceof CollaborationTermsError && err.code === "INVALID_EPSILON", String(bad));
  }
});

test("the query digest is SHA-256 over the domain tag, a zero byte and the UTF-8 text", () => {
  const sql = "SELECT COUNT(*) FROM t WHERE name = 'Zoë'";
  assert.equal(queryDigest(sql), sha256(new TextEncoder().encode(`cloister/collab-query/v1\0${sql}`)));
  assert.notEqual(queryDigest(sql), queryDigest(`${sql} `));
});
