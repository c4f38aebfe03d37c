/**
 * The pipeline commands against a running multi-process devnet: create (no
 * schedule), run <id> (the owner requests a run, waits for it and verifies
 * it; refused to another account and for a retired pipeline; a timeout that
 * says what to check), runs, status, and verify <run-id>.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { retirePipeline } from "../../src/chain/actions/register-pipeline.ts";
import { chainDefinition, createWriterClient } from "../../src/chain/clients.ts";
import { localAccount } from "../../src/crypto/secp256k1-account.ts";
import { startMultiProcessDevnet } from "../../src/devnet/multi-process.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
const fails = (exit: number, message: RegExp) => (e: { code: number; stderr: string }) => e.code === exit && message.test(e.stderr);

test("pipeline create / run <id> / runs / status and verify <run-id> on a running network", { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-pl-net-"));
  const devnet = await startMultiProcessDevnet({ dataDir: join(dir, "devnet"), nodes: 2 });
  try {
    await writeFile(join(dir, "in.csv"), "id,v\n1,a\n2,b\n3,c\n");
    const file = join(dir, "p.json");
    await writeFile(file, JSON.stringify({ name: "net", source: { type: "csv", path: "in.csv", cursor: "id" }, destination: { type: "csv", path: "out.csv", mode: "append" } }));
    const net = ["--network", devnet.networkFile];
    const created = lastJson((await run(process.execPath, [cli, "pipeline", "create", file, ...net, "--account", "1", "--json"])).stdout);
    assert.equal((created.candidates as string[]).length, 2);
    const id = String(created.pipeline);

    await assert.rejects(run(process.execPath, [cli, "pipeline", "run", id, ...net, "--account", "2"]), fails(2, new RegExp(`only the owner .* of pipeline ${id} can request a run`)));
    const result = lastJson((await run(process.execPath, [cli, "pipeline", "run", id, ...net, "--account", "1", "--json"])).stdout);
    assert.deepEqual(Object.keys(result), ["pipeline", "run", "read", "written", "cursor", "provenance", "verified"]);
    assert.equal(result.verified, true);
    assert.equal(result.read, 3);
    const runs = lastJson((await run(process.execPath, [cli, "pipeline", "runs", id, ...net, "--json"])).stdout).runs as { runId: string; read: number }[];
    assert.deepEqual(runs.map((r) => [r.runId, r.read]), [[result.run, 3]], "no schedule: the requested run is the only one");
    const status = lastJson((await run(process.execPath, [cli, "pipeline", "status", id, ...net, "--json"])).stdout);
    assert.equal(status.schedule, "");
    assert.deepEqual([status.runs, status.requests], [1, 1]);
    const verified = lastJson((await run(process.execPath, [cli, "verify", String(result.run), ...net, "--json"])).stdout);
    assert.equal(verified.ok, true);
    assert.equal((verified.job as { kind: string }).kind, "pipeline");
    assert.equal((await readFile(join(dir, "out.csv"), "utf8")).trim().split("\n").length, 4);
    await assert.rejects(run(process.execPath, [cli, "pipeline", "status", "12345", ...net]), fails(2, /no pipeline 12345/));
    // Human output with progress: the request, who runs it, and (no run can be anchored within 1 ms) what to check.
    const timedOut = run(process.execPath, [cli, "pipeline", "run", id, ...net, "--account", "1", "--timeout-ms", "1"], { env: { ...process.env, CLOISTER_PROGRESS: "1" } });
    await assert.rejects(timedOut, (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, new RegExp(`requested run 2 of pipeline ${id}`));
      assert.match(e.stderr, /candidate 0x[0-9a-fA-F]{40} runs it now/);
      assert.match(e.stderr, /no candidate anchored a run of pipeline .* within 1 ms of request 2: check that the nodes of its candidates/);
      return true;
    });

    // A retired pipeline: refused before any request is sent.
    const ownerKey = { ...process.env, CLOISTER_PRIVATE_KEY: devnet.requesterKey };
    const other = lastJson((await run(process.execPath, [cli, "pipeline", "create", file, ...net, "--json"], { env: ownerKey })).stdout);
    const owner = createWriterClient({ endpoint: { rpcUrl: devnet.rpcUrl }, chain: chainDefinition(devnet.chainId, devnet.rpcUrl), account: localAccount(devnet.requesterKey) });
    await retirePipeline(owner, devnet.deployment.pipelines!, BigInt(String(other.pipeline)));
    await assert.rejects(run(process.execPath, [cli, "pipeline", "run", String(other.pipeline), ...net], { env: ownerKey }), fails(2, /is retired: no run of it can be anchored/));
  } finally {
    await devnet.close();
    await rm(dir, { recursive: true, force: true });
  }
});
