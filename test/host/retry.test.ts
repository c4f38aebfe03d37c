import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ContractFunctionRevertedError, HttpRequestError, UnknownRpcError } from "viem";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { ContractRevertError } from "../../src/chain/contract-error.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { isTransientError, withRetry } from "../../src/host/retry.ts";
import { backoffDelay } from "../../src/util/backoff.ts";
import { StorageError } from "../../src/storage/blob-store.ts";

const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });

/** An operation that fails with `error` the first `failures` times, then returns its attempt number. */
function failing(failures: number, error: () => unknown) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    run: async (attempt: number) => {
      calls++;
      if (calls <= failures) throw error();
      return attempt;
    },
  };
}

describe("isTransientError", () => {
  test("network and storage-unreachable failures are transient", () => {
    assert.equal(isTransientError(refused()), true);
    assert.equal(isTransientError(new HttpRequestError({ url: "http://127.0.0.1:8545", cause: new TypeError("fetch failed") })), true);
    // What viem's custom transport makes of a provider that cannot connect.
    assert.equal(isTransientError(new UnknownRpcError(refused())), true);
    assert.equal(isTransientError(new TypeError("fetch failed", { cause: refused() })), true);
    assert.equal(isTransientError(new StorageError("STORAGE_UNREACHABLE", "kubo is down")), true);
  });

  test("reverts, enclave errors and permanent storage errors are not", () => {
    const revert = new ContractRevertError({ errorName: "TaskNotOpen", args: {}, cause: refused() });
    assert.equal(isTransientError(revert), false, "a revert is final even if its cause chain mentions the network");
    const viemRevert = new ContractFunctionRevertedError({ abi: taskMarketAbi, functionName: "acceptTask", message: "TaskNotOpen()" });
    assert.equal(isTransientError(viemRevert), false);
    assert.equal(isTransientError(new EnclaveError("INPUT_DIGEST_MISMATCH", "digest differs")), false);
    assert.equal(isTransientError(new StorageError("BLOB_CORRUPTED", "bad bytes")), false);
    assert.equal(isTransientError(new StorageError("BLOB_NOT_FOUND", "missing")), false);
    assert.equal(isTransientError(new Error("something else")), false);
    assert.equal(isTransientError("a string"), false);
  });
});

describe("withRetry", () => {
  test("retries transient errors with growing delays, then returns", async () => {
    const op = failing(4, refused);
    const delays: number[] = [];
    const result = await withRetry(op.run, { what: "getLogs", baseMs: 4, maxMs: 1_000, onRetry: ({ delayMs, attempt }) => {
      delays.push(delayMs);
      assert.equal(attempt, delays.length);
    } });
    assert.equal(result, 5);
    assert.equal(op.calls, 5);
    assert.equal(delays.length, 4);
    delays.forEach((d, i) => {
      const ceiling = 4 * 2 ** i;
      assert.ok(d >= ceiling / 2 && d <= ceiling, `delay ${i} = ${d} outside [${ceiling / 2}, ${ceiling}]`);
      if (i > 0) assert.ok(d >= delays[i - 1]!, `delays must not shrink: ${delays.join(", ")}`);
    });
  });

  test("delays are capped at maxMs", () => {
    for (let attempt = 1; attempt < 30; attempt++) assert.ok(backoffDelay(attempt, 100, 700) <= 700);
    assert.ok(backoffDelay(29, 100, 700) >= 350);
  });

  test("gives up after maxAttempts and rethrows the last error", async () => {
    const op = failing(100, refused);
    await assert.rejects(withRetry(op.run, { what: "put", baseMs: 1, maxAttempts: 3 }), /ECONNREFUSED/);
    assert.equal(op.calls, 3);
  });

  test("rethrows a non-retryable error at once", async () => {
    const revert = new ContractRevertError({ errorName: "SpecMismatch", args: {}, cause: undefined });
    const op = failing(100, () => revert);
    let retries = 0;
    const started = Date.now();
    await assert.rejects(withRetry(op.run, { what: "acceptTask", baseMs: 1_000, onRetry: () => retries++ }), (e) => e === revert);
    assert.equal(op.calls, 1);
    assert.equal(retries, 0);
    assert.ok(Date.now() - started < 500);
  });

  test("honours a custom isRetryable", async () => {
    const op = failing(2, () => new Error("flaky"));
    assert.equal(await withRetry(op.run, { what: "x", baseMs: 1, isRetryable: (e) => (e as Error).message === "flaky" }), 3);
  });

  test("an abort stops the wait and rejects with the signal's reason", async () => {
    const op = failing(100, refused);
    const controller = new AbortController();
    const reason = new Error("stopping");
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();
    await assert.rejects(withRetry(op.run, { what: "getLogs", baseMs: 10_000, signal: controller.signal }), (e) => e === reason);
    assert.ok(Date.now() - started < 2_000);
    assert.equal(op.calls, 1);
  });

  test("refuses a maxAttempts below 1", async () => {
    await assert.rejects(withRetry(async () => 1, { what: "x", maxAttempts: 0 }), RangeError);
  });
});
