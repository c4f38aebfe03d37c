import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const dirs: string[] = [];
test.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "cloister-pl-cli-"));
  dirs.push(d);
  return d;
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;

test("pipeline run: the first run reads everything, the second with the same --data-dir only the new rows; --json ends in the run record; no plaintext in the data dir", async () => {
  const dir = await tempDir();
  const canary = `canary-${randomBytes(8).toString("hex")}`;
  await writeFile(join(dir, "in.csv"), `id,who,amount\n1,${canary},10\n2,bob,20\n3,carol,30\n`);
  const file = join(dir, "p.json");
  await writeFile(file, JSON.stringify({ name: "cli", source: { type: "csv", path: "in.csv", cursor: "id" }, transform: { sql: "SELECT id, who, amount * 10 AS a10 FROM source" }, destination: { type: "csv", path: "out.csv", mode: "append" } }));
  const dataDir = join(dir, "state");
  const first = lastJson((await run(process.execPath, [cli, "pipeline", "run", file, "--data-dir", dataDir, "--json"])).stdout);
  assert.deepEqual(Object.keys(first), ["pipeline", "run", "read", "written", "cursor", "provenance", "verified"]);
  assert.equal(first.read, 3);
  assert.equal(first.written, 3);
  assert.equal(first.verified, true);
  assert.match(String(first.provenance), /^bafkrei/);
  await appendFile(join(dir, "in.csv"), "4,dave,40\n");
  const second = lastJson((await run(process.execPath, [cli, "pipeline", "run", file, "--data-dir", dataDir, "--json"])).stdout);
  assert.equal(second.pipeline, first.pipeline);
  assert.notEqual(second.run, first.run);
  assert.deepEqual([second.read, second.written], [1, 1]);
  assert.equal((await readFile(join(dir, "out.csv"), "utf8")).trim().split("\n").length, 5, "header and four rows");
  for (const e of (await readdir(dataDir, { recursive: true, withFileTypes: true })).filter((x) => x.isFile())) {
    assert.equal((await readFile(join(e.parentPath, e.name))).includes(Buffer.from(canary)), false, `${e.name} holds the canary`);
  }
});

test("pipeline run: a bad file or a missing source exits 2 and says what to fix", async () => {
  const dir = await tempDir();
  const bad = join(dir, "bad.json");
  await writeFile(bad, JSON.stringify({ name: "x", source: { type: "csv" }, destination: { type: "csv", path: "o.csv", mode: "append" } }));
  await assert.rejects(run(process.execPath, [cli, "pipeline", "run", bad]), (e: { code: number; stderr: string }) => e.code === 2 && /source|path/.test(e.stderr));
  const missing = join(dir, "missing.json");
  await writeFile(missing, JSON.stringify({ name: "x", source: { type: "csv", path: "nope.csv" }, destination: { type: "csv", path: "o.csv", mode: "append" } }));
  await assert.rejects(run(process.execPath, [cli, "pipeline", "run", missing]), (e: { code: number; stderr: string }) => e.code === 2 && /nope\.csv does not exist/.test(e.stderr));
});

test("demo pipeline passes every check", async () => {
  const { stdout } = await run(process.execPath, [cli, "demo", "pipeline", "--json"]);
  const json = lastJson(stdout);
  assert.equal(json.verified, true);
  assert.equal(json.destinationRows, 8);
  assert.ok((json.checks as string[]).some((c) => /RunAlreadyAnchored/.test(c)));
});

test("pipeline run: an unreachable database exits 2, and the password is not in the message", async () => {
  const dir = await tempDir();
  const file = join(dir, "down.json");
  await writeFile(file, JSON.stringify({ name: "down", source: { type: "postgres", url: "postgres://u:hunter2secret@127.0.0.1:1/db", table: "t" }, destination: { type: "csv", path: "o.csv", mode: "append" } }));
  await assert.rejects(run(process.execPath, [cli, "pipeline", "run", file]), (e: { code: number; stderr: string }) => e.code === 2 && /CONNECTOR_UNREACHABLE/.test(e.stderr) && !e.stderr.includes("hunter2secret"));
});
