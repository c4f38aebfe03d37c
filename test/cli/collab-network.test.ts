/** `cloister collab create | approve | status | runs` against a running devnet (`devnet up`), as a user runs them. */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { promisify } from "node:util";

const exec = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const example = new URL("../../examples/clean-room/", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function cloister(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cli, ...args], { env: { ...process.env, CLOISTER_NETWORK: "", CLOISTER_PRIVATE_KEY: "", CLOISTER_PROGRESS: "" } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}
const lastJson = (text: string) => JSON.parse(text.trim().split("\n").at(-1)!) as Record<string, unknown>;

test("collab create, approve by each party, status and runs on a running devnet; run <id> there is refused as not built", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-collab-net-"));
  dirs.push(dir);
  await cp(example, dir, { recursive: true });
  const file = JSON.parse(await readFile(join(dir, "collaboration.json"), "utf8")) as { parties: { account?: string }[] };
  // Devnet accounts 0 and 1 (the standard test mnemonic).
  file.parties[0]!.account = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
  file.parties[1]!.account = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  await writeFile(join(dir, "collaboration.json"), JSON.stringify(file));
  const netDir = join(dir, "net");
  const devnet = spawn(process.execPath, [cli, "devnet", "up", "--nodes", "1", "--dir", netDir, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CLOISTER_PROGRESS: "" } });
  const exited = new Promise<number | null>((resolve) => devnet.once("exit", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: devnet.stdout }).on("line", (line) => line === "ready" && resolve());
      void exited.then((code) => reject(new Error(`devnet up exited (${code}) before ready`)));
    });
    const created = await cloister(["collab", "create", join(dir, "collaboration.json"), "--network", netDir, "--account", "0", "--json"]);
    assert.equal(created.code, 0, created.stderr);
    const { collaboration: id, recipientKeyFile } = lastJson(created.stdout) as { collaboration: string; recipientKeyFile: string };
    assert.match(id, /^0x[0-9a-f]{64}$/);
    assert.equal((await stat(recipientKeyFile)).mode & 0o777, 0o600, "the recipient's key is readable by its owner only");

    const before = lastJson((await cloister(["collab", "status", id, "--network", netDir, "--json"])).stdout) as { approved: boolean; parties: { approved: boolean }[]; runs: number; maxRuns: number };
    assert.equal(before.approved, false);
    assert.deepEqual(before.parties.map((p) => p.approved), [false, false]);
    assert.equal(before.maxRuns, 10);

    assert.equal((await cloister(["collab", "approve", id, "--network", netDir, "--account", "0"])).code, 0);
    const notParty = await cloister(["collab", "approve", id, "--network", netDir, "--account", "2"]);
    assert.equal(notParty.code, 2);
    assert.match(notParty.stderr, /is not a party/);
    const wrongName = await cloister(["collab", "approve", id, "--party", "retailer", "--file", join(dir, "collaboration.json"), "--network", netDir, "--account", "1"]);
    assert.equal(wrongName.code, 2);
    assert.match(wrongName.stderr, /not the signing account's party/);
    assert.equal((await cloister(["collab", "approve", id, "--party", "bank", "--file", join(dir, "collaboration.json"), "--network", netDir, "--account", "1"])).code, 0);
    const after = lastJson((await cloister(["collab", "status", id, "--network", netDir, "--json"])).stdout) as { approved: boolean };
    assert.equal(after.approved, true);
    assert.deepEqual(lastJson((await cloister(["collab", "runs", id, "--network", netDir, "--json"])).stdout).runs, []);

    const run = await cloister(["collab", "run", id, "--network", netDir, "--account", "0"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /not built yet/);
  } finally {
    devnet.kill("SIGINT");
    await exited;
  }
});
