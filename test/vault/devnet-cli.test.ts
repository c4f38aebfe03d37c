/**
 * The vault on `cloister devnet up --clusters 2` (the multi-process devnet, src/devnet/multi-process.ts) as
 * a user drives it: the CLI's vault commands in separate processes, their --json shapes, a re-share of one token and of a
 * whole cluster, transfer and burn.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { promisify } from "node:util";

const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const run = promisify(execFile);

test("devnet up --clusters 2 prints its vault clusters; vault store/status/get/reshare/transfer/burn work from other processes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-vault-cli-"));
  const netDir = join(dir, "net");
  const devnet = spawn(process.execPath, [cli, "devnet", "up", "--nodes", "1", "--clusters", "2", "--dir", netDir, "--port", "0", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  devnet.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => devnet.once("exit", (code) => resolve(code)));
  const env = { ...process.env, CLOISTER_NETWORK: netDir, CLOISTER_PRIVATE_KEY: "", CLOISTER_PROGRESS: "" };
  const cloister = async (args: string[]) => {
    try {
      const r = await run(process.execPath, [cli, ...args], { env, encoding: "buffer" });
      return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
    } catch (e) {
      const x = e as { code: number; stdout: Buffer; stderr: Buffer };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr.toString() };
    }
  };
  const last = (b: Buffer) => JSON.parse(b.toString().trim().split("\n").at(-1)!) as Record<string, unknown>;
  try {
    const up = await new Promise<Record<string, unknown>>((resolve, reject) => {
      createInterface({ input: devnet.stdout }).on("line", (line) => {
        if (line.startsWith("{")) resolve(JSON.parse(line) as Record<string, unknown>);
      });
      void exited.then((code) => reject(new Error(`devnet up exited (${code}):\n${stderr}`)));
    });
    const clusters = up.clusters as { id: string; members: string[] }[];
    assert.deepEqual(clusters.map((c) => [c.id, c.members.length]), [["1", 5], ["2", 5]]);
    assert.match(String(up.vaultUrl), /^http:\/\/127\.0\.0\.1:\d+$/);

    const secretFile = join(dir, "secret.bin");
    const secret = Buffer.from("CLI-CANARY-3f9e a secret NFT key");
    await writeFile(secretFile, secret);
    const stored = await cloister(["vault", "store", secretFile, "--account", "0", "--json"]);
    assert.equal(stored.code, 0, stored.stderr);
    const s = last(stored.stdout) as { token: string; clusters: string[] };
    assert.match(s.token, /^\d+$/);
    assert.ok(s.clusters.includes("1"));

    const status = await cloister(["vault", "status", s.token, "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const st = last(status.stdout) as { token: string; clusters: { id: string; synced: boolean; slots: { slot: number; confirmed: boolean }[] }[] };
    assert.equal(st.token, s.token);
    assert.deepEqual(st.clusters.map((c) => c.id), ["1", "2"]);
    assert.equal(st.clusters[0]!.synced, true);
    assert.equal(st.clusters[0]!.slots.length, 5);

    const got = await cloister(["vault", "get", s.token, "--account", "0"]);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(got.stdout, secret);
    const out = join(dir, "out.bin");
    assert.equal((await cloister(["vault", "get", s.token, "--account", "0", "--out", out])).code, 0);
    assert.deepEqual(await readFile(out), secret);

    const stranger = await cloister(["vault", "get", s.token, "--account", "1", "--json"]);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /RETRIEVAL_REFUSED/);
    assert.match(stranger.stderr, /WRONG_OWNER/);
    assert.equal(stranger.stdout.length, 0);

    // A refresh on request: the cluster's host re-shares (same secret, new shares); then every token of cluster 2.
    const reshared = await cloister(["vault", "reshare", s.token, "--cluster", "1", "--json"]);
    assert.equal(reshared.code, 0, reshared.stderr);
    const r = last(reshared.stdout) as { token: string; cluster: string; version: string; newRoot: string; transactionHash: string };
    assert.deepEqual([r.token, r.cluster, r.version], [s.token, "1", "2"]);
    assert.match(r.newRoot, /^0x[0-9a-f]{64}$/);
    const syncedAt = async (version: string) => {
      for (let i = 0; i < 300; i++) {
        const x = last((await cloister(["vault", "status", s.token, "--json"])).stdout) as { version: string; clusters: { synced: boolean }[] };
        if (x.version === version && x.clusters.every((c) => c.synced)) return;
        await new Promise((done) => setTimeout(done, 100));
      }
      assert.fail(`token ${s.token} did not sync version ${version} in both clusters`);
    };
    await syncedAt("2");
    const whole = await cloister(["vault", "reshare", "--cluster", "2", "--json"]);
    assert.equal(whole.code, 0, whole.stderr);
    const w = last(whole.stdout) as { cluster: string; reshared: { token: string; version: string }[]; skipped: unknown[] };
    assert.deepEqual(w, { ...w, cluster: "2", reshared: [{ ...w.reshared[0]!, token: s.token, version: "3" }], skipped: [] });
    await syncedAt("3");
    assert.deepEqual((await cloister(["vault", "get", s.token, "--account", "0"])).stdout, secret);
    const noCluster = await cloister(["vault", "reshare", s.token]);
    assert.equal(noCluster.code, 2);
    assert.match(noCluster.stderr, /--cluster <id>/);
    const unknown = await cloister(["vault", "reshare", s.token, "--cluster", "9", "--json"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /UNKNOWN_CLUSTER/);

    const accounts = last((await cloister(["devnet", "accounts", "--json"])).stdout) as { accounts: { address: string }[] };
    const transferred = await cloister(["vault", "transfer", s.token, accounts.accounts[1]!.address, "--account", "0", "--json"]);
    assert.equal(transferred.code, 0, transferred.stderr);
    assert.match((await cloister(["vault", "get", s.token, "--account", "0"])).stderr, /WRONG_OWNER/);
    assert.deepEqual((await cloister(["vault", "get", s.token, "--account", "1"])).stdout, secret);

    const burned = await cloister(["vault", "burn", s.token, "--account", "1", "--json"]);
    assert.equal(burned.code, 0, burned.stderr);
    assert.equal(last(burned.stdout).burned, true);
    assert.match((await cloister(["vault", "get", s.token, "--account", "1"])).stderr, /UNKNOWN_TOKEN/);
  } finally {
    devnet.kill("SIGINT");
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});
