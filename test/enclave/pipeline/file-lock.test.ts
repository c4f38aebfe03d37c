/**
 * Two runs of the same slot loading one destination file at once (a failover
 * candidate starting while the first is still loading) load it once: the
 * file's lock serializes them and the second finds the first's run marker.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileRows } from "../../../src/enclave/pipeline/file-destination.ts";
import { withFileLock } from "../../../src/enclave/pipeline/file-lock.ts";
import type { Column, Row } from "../../../src/enclave/connectors/types.ts";

const columns: Column[] = [{ name: "id", type: "integer" }, { name: "v", type: "text" }];
const marker = (runId: string) => ({ table: "", runId, record: (w: { rowCount: number }) => `written ${w.rowCount}` });
async function* once(batch: readonly Row[]): AsyncGenerator<readonly Row[]> {
  yield batch;
}

test("two concurrent loads of the same run append its rows once; the other resumes from the marker", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cloister-file-lock-"));
  try {
    const path = join(dir, "out", "rows.csv");
    const rows: Row[] = [[1n, "a"], [2n, "b"]];
    const outcomes = await Promise.all([1, 2, 3].map(() => writeFileRows({ type: "csv", path, mode: "append" }, columns, once(rows), marker("run-1"))));
    assert.equal(outcomes.filter((o) => o.resumed === undefined).length, 1, "one load wrote");
    assert.deepEqual(outcomes.filter((o) => o.resumed !== undefined).map((o) => o.resumed), ["written 2", "written 2"]);
    assert.deepEqual(readFileSync(path, "utf8").trim().split("\n"), ["id,v", "1,a", "2,b"]);
    assert.equal(existsSync(`${path}.cloister-lock`), false, "the lock is released");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a lock left by a process that is gone is taken over; a live holder's lock times out with PIPELINE_LOAD_FAILED", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cloister-file-lock-"));
  try {
    const path = join(dir, "rows.csv");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    writeFileSync(`${path}.cloister-lock`, dead);
    assert.equal(await withFileLock(path, async () => "ran"), "ran");
    assert.equal(existsSync(`${path}.cloister-lock`), false);

    writeFileSync(`${path}.cloister-lock`, String(process.ppid));
    await assert.rejects(
      withFileLock(path, async () => "ran", { timeoutMs: 200 }),
      (error: Error & { code?: string }) => error.code === "PIPELINE_LOAD_FAILED" && error.message.includes(`process ${process.ppid}`) && error.message.includes("delete"),
    );
    assert.equal(readFileSync(`${path}.cloister-lock`, "utf8"), String(process.ppid), "a live holder's lock is left alone");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
