/**
 * A pipeline file's database endpoints may name `pin` (postgres and mysql): it is checked when the file is
 * read and kept for the enclave, which then connects over pinned TLS through its relay (run-pipeline.ts).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPipelineFile } from "../../src/sdk/pipeline-file.ts";

const dir = mkdtempSync(join(tmpdir(), "cloister-pipeline-pin-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const pin = "cd".repeat(32);

async function load(file: Record<string, unknown>) {
  const path = join(dir, `p-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(file));
  return loadPipelineFile(path);
}

test("a mysql source and destination keep their pin for the enclave", async () => {
  const source = { type: "mysql", url: "mysql://app:secret@db.example:3306/shop", table: "orders", cursor: "id", pin };
  const destination = { type: "mysql", url: "mariadb://app:secret@db.example/shop", table: "orders_copy", mode: "append", pin };
  const spec = await load({ name: "pinned", source, destination });
  assert.deepEqual(spec.source, source);
  assert.deepEqual(spec.destination, destination);
});

test("a pin on a file source, or one that is not 64 hex digits, is refused when the file is read", async () => {
  const destination = { type: "mysql", url: "mysql://db.example/shop", table: "t", mode: "append" };
  await assert.rejects(load({ name: "bad", source: { type: "csv", path: "a.csv", pin }, destination }), (e: unknown) => {
    assert.equal((e as { code?: string }).code, "PIPELINE_FILE_INVALID");
    assert.match((e as Error).message, /"pin".*postgres and mysql/);
    return true;
  });
  await assert.rejects(load({ name: "bad", source: { type: "mysql", url: "mysql://db.example/shop", table: "t" }, destination: { ...destination, pin: "ab" } }), /PIPELINE_FILE_INVALID|"pin"/);
});
