/** `cloister collab run` and `cloister demo clean-room` as a user runs them: child processes, the --json last line, exit codes 0, 1 and 2. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

const exec = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const example = new URL("../../examples/clean-room/", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function copy(edit: (f: Record<string, unknown>) => void = () => {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-collab-cli-"));
  dirs.push(dir);
  await cp(example, dir, { recursive: true });
  const file = JSON.parse(await readFile(join(dir, "collaboration.json"), "utf8")) as Record<string, unknown>;
  edit(file);
  await writeFile(join(dir, "collaboration.json"), JSON.stringify(file));
  return join(dir, "collaboration.json");
}

async function cloister(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cli, ...args], { env: { ...process.env, CLOISTER_PROGRESS: "" } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test("collab run --json: the last stdout line is the delivered, verified result", async () => {
  const file = await copy();
  const dataDir = join(file, "..", "state");
  const r = await cloister(["collab", "run", file, "--data-dir", dataDir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(Object.keys(last), ["collaboration", "run", "columns", "rows", "suppressed", "provenance", "verified", "releaseProved"]);
  assert.match(last.collaboration, /^0x[0-9a-f]{64}$/);
  assert.equal(last.run, 1);
  assert.deepEqual(last.columns, ["category", "customers", "total"]);
  assert.deepEqual(last.rows.map((r: unknown[]) => r[0]), ["books", "electronics", "garden"]);
  assert.equal(last.suppressed, 1);
  assert.match(last.provenance, /^baf/);
  assert.equal(last.verified, true);
  assert.equal(last.releaseProved, false, "the example's compute party names no chain endpoints");

  // cloister verify <collaboration>:<run>: the provenance, the compute enclave's attestation and the run on chain.
  const verified = await cloister(["verify", `${last.collaboration}:1`, "--data-dir", dataDir, "--json"]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const v = JSON.parse(verified.stdout.trim().split("\n").at(-1)!);
  assert.equal(v.ok, true);
  assert.equal(v.job.kind, "collab-compute");
  assert.deepEqual(v.checks.map((c: { name: string }) => c.name), ["signature", "attestation", "output", "anchor"]);
  const unknown = await cloister(["verify", `${last.collaboration}:2`, "--data-dir", dataDir]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no run 2/);
});

test("collab run: a refused query exits 1 with the typed error; a bad file and an unreachable source exit 2 saying what to fix", async () => {
  const rowLevel = await cloister(["collab", "run", await copy((f) => (f.query = "SELECT p.customer_id FROM purchases p")), "--json"]);
  assert.equal(rowLevel.code, 1);
  assert.match(rowLevel.stderr, /\[ROW_LEVEL_OUTPUT\]/);
  assert.equal(JSON.parse(rowLevel.stderr.trim().split("\n").at(-1)!).error.code, "ROW_LEVEL_OUTPUT");
  assert.equal(rowLevel.stdout.trim(), "");

  const bad = await cloister(["collab", "run", await copy((f) => (f.compute = "nobody"))]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /compute names "nobody", which is not a party/);

  const missing = await cloister(["collab", "run", await copy((f) => ((f.parties as { datasets: Record<string, unknown> }[])[1]!.datasets = { cards: { type: "parquet", path: "nowhere.parquet" } }))]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /CONNECTOR_FILE_NOT_FOUND/);
  assert.match(missing.stderr, /nowhere\.parquet/);
});

test("demo clean-room --json: a join, one group suppressed, verified", async () => {
  const r = await cloister(["demo", "clean-room", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(last.suppressed, 1);
  assert.equal(last.verified, true);
  assert.ok(last.checks.some((c: string) => c.includes("recorded on chain")));
});
