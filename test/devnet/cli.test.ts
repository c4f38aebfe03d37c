/** `cloister devnet up` as a user runs it: a child process that prints its endpoints and stops cleanly on Ctrl-C. */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { waitUntilGone } from "./processes.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const echo = new URL("../../examples/echo.js", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

interface Endpoints {
  rpcUrl: string;
  wsUrl: string;
  ipfsUrl: string;
  casUrl: string;
  simPkiDir: string;
  nodes: { pid: number; enclavePid: number; signer: string; simulated: boolean }[];
}

test("devnet up prints its endpoints, serves task run --rpc/--ipfs, and stops every process on SIGINT", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-devnet-cli-"));
  dirs.push(dir);
  const devnet = spawn(process.execPath, [cli, "devnet", "up", "--nodes", "1", "--dir", join(dir, "net"), "--port", "0", "--json", "--rpc-max-batch", "70"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  devnet.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => devnet.once("exit", (code) => resolve(code)));
  try {
    const endpoints = await new Promise<Endpoints>((resolve, reject) => {
      createInterface({ input: devnet.stdout }).once("line", (line) => resolve(JSON.parse(line) as Endpoints));
      void exited.then((code) => reject(new Error(`devnet up exited (${code}) before printing its endpoints:\n${stderr}`)));
    });
    assert.match(endpoints.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(endpoints.wsUrl, endpoints.rpcUrl.replace("http:", "ws:"));
    assert.equal(endpoints.nodes.length, 1);
    assert.equal(endpoints.nodes[0]!.simulated, true);
    assert.match(stderr, /SIMULATED/);
    // The limit flags reach the servers.
    const batch = (n: number) => Array.from({ length: n }, (_, id) => ({ jsonrpc: "2.0", id, method: "eth_chainId" }));
    const post = async (body: unknown) => (await (await fetch(endpoints.rpcUrl, { method: "POST", body: JSON.stringify(body) })).json()) as unknown;
    assert.equal(((await post(batch(70))) as unknown[]).length, 70);
    assert.match(((await post(batch(71))) as { error: { message: string } }).error.message, /limit of 70/);

    const input = join(dir, "input.txt");
    const text = `hello ${randomBytes(8).toString("hex")}`;
    await writeFile(input, text);
    const flags = ["--rpc", endpoints.rpcUrl, "--ws", endpoints.wsUrl, "--ipfs", endpoints.ipfsUrl, "--cas", endpoints.casUrl, "--sim-pki", endpoints.simPkiDir];
    const task = await run(process.execPath, [cli, "task", "run", echo, "--input", input, ...flags, "--json"]);
    const result = JSON.parse(task.stdout.trim().split("\n").at(-1)!) as { output: string; verified: boolean; enclave: { signer: string } };
    assert.equal(result.output, text);
    assert.equal(result.verified, true);
    assert.equal(result.enclave.signer, endpoints.nodes[0]!.signer);
    // The nodes report to devnet up only the events it shows, and those still arrive.
    for (const deadline = Date.now() + 5_000; !/node 0: task-completed/.test(stderr) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /node 0: task-accepted .*\n[^]*node 0: task-completed /);

    // Unusable flag combinations are usage errors (exit 2), not network errors.
    await assert.rejects(run(process.execPath, [cli, "task", "run", echo, "--input", input, "--rpc", endpoints.rpcUrl]), (e: { code: number; stderr: string }) => e.code === 2 && /--ipfs/.test(e.stderr));
    await assert.rejects(run(process.execPath, [cli, "task", "run", echo, "--input", input, ...flags, "--data-dir", dir]), (e: { code: number }) => e.code === 2);
    await assert.rejects(run(process.execPath, [cli, "task", "run", echo, "--input", input, ...flags, "--ws", endpoints.rpcUrl]), (e: { code: number; stderr: string }) => e.code === 2 && /--ws takes/.test(e.stderr));

    devnet.kill("SIGINT");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /stopped/);
    await waitUntilGone(endpoints.nodes.flatMap((n) => [n.pid, n.enclavePid]));
  } finally {
    if (devnet.exitCode === null) devnet.kill("SIGKILL");
  }
});

test("devnet up refuses unusable options with exit 2", async () => {
  await assert.rejects(run(process.execPath, [cli, "devnet", "up", "--nodes", "0"]), (e: { code: number; stderr: string }) => e.code === 2 && /--nodes/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli, "devnet", "up", "--ipfs-max-upload-bytes", "0"]), (e: { code: number; stderr: string }) => e.code === 2 && /--ipfs-max-upload-bytes/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli, "devnet", "down"]), (e: { code: number; stderr: string }) => e.code === 2 && /devnet up/.test(e.stderr));
});

test("a node daemon process refuses to start without its configuration (exit 2)", async () => {
  const nodeMain = new URL("../../src/host/main.ts", import.meta.url).pathname;
  const env = { ...process.env, CLOISTER_OPERATOR_KEY: "" };
  const flags = ["--rpc", "http://127.0.0.1:1", "--ipfs", "http://127.0.0.1:1", "--cas", "http://127.0.0.1:1", "--data-dir", tmpdir(), "--sim-pki", tmpdir()];
  await assert.rejects(run(process.execPath, [nodeMain, ...flags], { env }), (e: { code: number; stderr: string }) => e.code === 2 && /CLOISTER_OPERATOR_KEY/.test(e.stderr));
  const keyed = { ...env, CLOISTER_OPERATOR_KEY: `0x${"01".repeat(32)}` };
  await assert.rejects(run(process.execPath, [nodeMain, ...flags.slice(2)], { env: keyed }), (e: { code: number; stderr: string }) => e.code === 2 && /--rpc/.test(e.stderr));
  await assert.rejects(run(process.execPath, [nodeMain, ...flags, "--report-events", "task-completed,task-done"], { env: keyed }), (e: { code: number; stderr: string }) => e.code === 2 && /--report-events takes .*unknown task-done/.test(e.stderr));
  // A configured node whose attestation service is unreachable fails to start (exit 1) and says why.
  await assert.rejects(run(process.execPath, [nodeMain, ...flags], { env: keyed }), (e: { code: number; stderr: string }) => e.code === 1 && /CAS_UNREACHABLE/.test(e.stderr));
});
