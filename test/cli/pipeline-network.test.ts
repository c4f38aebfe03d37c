/**
 * The pipeline commands against a running multi-process devnet: create,
 * run <id> (waits for the scheduled run), runs, status, and verify <run-id>.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startMultiProcessDevnet } from "../../src/devnet/multi-process.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;

test("pipeline create / run <id> / runs / status and verify <run-id> on a running network", { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-pl-net-"));
  const devnet = await startMultiProcessDevnet({ dataDir: join(dir, "devnet"), nodes: 2 });
  try {
    await writeFile(join(dir, "in.csv"), "id,v\n1,a\n2,b\n3,c\n");
    const file = join(dir, "p.json");
    await writeFile(file, JSON.stringify({ name: "net", source: { type: "csv", path: "in.csv", cursor: "id" }, destination: { type: "csv", path: "out.csv", mode: "append" }, schedule: "@every 2s" }));
    const net = ["--network", devnet.networkFile];
    const created = lastJson((await run(process.execPath, [cli, "pipeline", "create", file, ...net, "--account", "1", "--json"])).stdout);
    assert.equal((created.candidates as string[]).length, 2);
    const id = String(created.pipeline);
    const ran = lastJson((await run(process.execPath, [cli, "pipeline", "run", id, ...net, "--json"])).stdout);
    assert.deepEqual(Object.keys(ran), ["pipeline", "run", "read", "written", "cursor", "provenance", "verified"]);
    assert.equal(ran.verified, true);
    const runs = lastJson((await run(process.execPath, [cli, "pipeline", "runs", id, ...net, "--json"])).stdout).runs as { runId: string; read: number }[];
    assert.ok(runs.length >= 1);
    assert.equal(runs.reduce((n, r) => n + r.read, 0), 3, "the three rows were read once over all runs");
    const status = lastJson((await run(process.execPath, [cli, "pipeline", "status", id, ...net, "--json"])).stdout);
    assert.equal(status.schedule, "@every 2s");
    assert.ok(Number(status.runs) >= 1);
    const verified = lastJson((await run(process.execPath, [cli, "verify", String(ran.run), ...net, "--json"])).stdout);
    assert.equal(verified.ok, true);
    assert.equal((verified.job as { kind: string }).kind, "pipeline");
    assert.equal((await readFile(join(dir, "out.csv"), "utf8")).trim().split("\n").length, 4);
    await assert.rejects(run(process.execPath, [cli, "pipeline", "status", "12345", ...net]), (e: { code: number; stderr: string }) => e.code === 2 && /no pipeline 12345/.test(e.stderr));
  } finally {
    await devnet.close();
    await rm(dir, { recursive: true, force: true });
  }
});
