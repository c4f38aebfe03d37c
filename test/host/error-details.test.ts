import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ChainBehindError } from "../../src/chain/follower-checkpoint.ts";
import { errorDetails, fileHostLog } from "../../src/host/log.ts";
import { TaskTakenError } from "../../src/host/market-batches.ts";

test("a failure event takes a typed error's details, and nothing from other errors", () => {
  assert.deepEqual(errorDetails(new TaskTakenError(7n, "0xab")), { details: { taskId: "7", transactionHash: "0xab" } });
  assert.deepEqual(errorDetails(new TaskTakenError(7n)), { details: { taskId: "7" } });
  assert.deepEqual(errorDetails(Object.assign(new Error("x"), { details: { key: "0x01" } })), {}, "only a CloisterError's details are safe by contract");
  assert.deepEqual(errorDetails("not an error"), {});
});

test("host.log records a typed error's code and details", async () => {
  const path = join(await mkdtemp(join(tmpdir(), "host-log-")), "host.log");
  const log = fileHostLog(path);
  const error = new ChainBehindError("the checkpoint", "/data/checkpoint.json", 120n, 100n, "running");
  log.emit({ type: "watcher-error", source: "chain-follower", code: error.code, message: error.message, ...errorDetails(error) });
  log.close();
  const line = JSON.parse((await readFile(path, "utf8")).trim()) as Record<string, unknown>;
  assert.equal(line.code, "CHAIN_BEHIND_SAVED_POSITION");
  assert.deepEqual(line.details, { path: "/data/checkpoint.json", savedBlock: "120", head: "100", when: "running" });
});
