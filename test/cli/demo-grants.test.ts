/** `cloister demo grants`: the grant story on an embedded network over a DuckDB file, every check passing. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test("demo grants: refused without a grant, allowed once, refused when used up, one use listed", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "cloister-demo-grants-"));
  dirs.push(dataDir);
  const { stdout } = await run(process.execPath, [cli, "demo", "grants", "--data-dir", dataDir, "--json"], { env: { ...process.env, CLOISTER_PROGRESS: "" } });
  const json = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(json.verified, true);
  assert.equal(json.refusedWithoutGrant, "GRANT_NOT_FOUND");
  assert.equal(json.refusedWhenUsedUp, "GRANT_USED_UP");
  assert.equal(json.allowed.rowsAffected, 1);
  assert.deepEqual(json.balance, { before: 50, after: 75 });
  assert.equal(json.uses, 1);
  assert.equal(json.checks.length, 4);
  assert.match(json.allowed.transactionHash, /^0x[0-9a-f]{64}$/);
});

test("demo grants in text: every check printed", async () => {
  const { stdout, stderr } = await run(process.execPath, [cli, "demo", "grants"], { env: { ...process.env, CLOISTER_PROGRESS: "1" } });
  assert.match(stderr, /\[GRANT_NOT_FOUND\]/);
  assert.match(stderr, /\[GRANT_USED_UP\]/);
  assert.equal((stdout.match(/✓/g) ?? []).length, 4);
  assert.match(stdout, /used once, as granted/);
});
