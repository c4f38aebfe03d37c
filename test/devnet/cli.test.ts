/** `cloister devnet up` as a user runs it: a child process that says ready, serves `--network`, and stops cleanly on Ctrl-C. */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { parseEventLogs, type Address } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { getBalance, getLogs } from "viem/actions";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import { readTokenBalance } from "../../src/chain/actions/token.ts";
import { chainDefinition, createReaderClient } from "../../src/chain/clients.ts";
import { testMnemonic } from "../../src/chain/dev-accounts.ts";
import { manifestDigest } from "../../src/attestation/manifest/index.ts";
import { readNetworkFile } from "../../src/devnet/network-file.ts";
import { testTokenPerAccount } from "../../src/devnet/test-token.ts";
import { waitUntilGone } from "./processes.ts";

const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const echo = new URL("../../examples/echo.js", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const run = promisify(execFile);

interface TaskJson {
  taskId: string;
  requester: string;
  output: string;
  verified: boolean;
  enclave: { signer: string };
}

test("devnet up says ready once it serves and writes its network file; task run --network --account signs as that account", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-devnet-cli-"));
  dirs.push(dir);
  const netDir = join(dir, "net");
  // CLOISTER_PROGRESS=1: progress in a pipe too, to see the nodes' events.
  const devnet = spawn(process.execPath, [cli, "devnet", "up", "--nodes", "1", "--dir", netDir, "--port", "0", "--rpc-max-batch", "70", "--allow-origin", "http://localhost:5173"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CLOISTER_PROGRESS: "1" } });
  let stderr = "";
  devnet.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => devnet.once("exit", (code) => resolve(code)));
  const env = { ...process.env, CLOISTER_NETWORK: "", CLOISTER_PRIVATE_KEY: "", CLOISTER_PROGRESS: "" };
  const cloister = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => run(process.execPath, [cli, ...args], { env: { ...env, ...extraEnv } });
  try {
    const printed: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: devnet.stdout });
      lines.on("line", (line) => {
        printed.push(line);
        if (line === "ready") resolve();
      });
      void exited.then((code) => reject(new Error(`devnet up exited (${code}) before saying ready:\n${stderr}`)));
    });
    // At 'ready' the network file is there and every endpoint in it answers.
    const network = await readNetworkFile(netDir);
    assert.equal(network.path, join(netDir, "network.json"));
    assert.equal(network.devAccounts, 10);
    // The network file names the devnet's manifest (manifest.json beside it) by path and digest.
    assert.equal(network.manifest.attestation.allowSimulation, true);
    assert.equal(network.manifest.packages["cloister-enclave"]?.measurements.length, 1);
    assert.deepEqual(network.manifest.roles.task?.packages, ["cloister-enclave"]);
    assert.equal(network.manifestDigest, manifestDigest(network.manifest));
    const chainId = await fetch(network.endpoints.rpc, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }) });
    assert.equal(Number(((await chainId.json()) as { result: string }).result), network.chainId);
    assert.equal((await fetch(`${network.endpoints.cas!}/deployment`)).status, 200);
    assert.equal((await fetch(`${network.endpoints.ipfs}/api/v0/version`, { method: "POST" })).status, 200);
    const nodeLine = printed.find((l) => /^ {2}node 0 /.test(l));
    const nodeSigner = nodeLine?.match(/signer (0x[0-9a-fA-F]{40})/)?.[1];
    assert.ok(nodeSigner, printed.join("\n"));
    assert.ok(printed.some((l) => l.includes(`--network ${netDir} --account 0`)), "it says how to run a task");
    // It prints its dashboard's URL with the other endpoints; the chain serves that origin and --allow-origin's, no other.
    const dashboardUrl = printed.map((l) => l.match(/^ {2}dashboard +(http:\/\/127\.0\.0\.1:\d+\/)/)?.[1]).find(Boolean);
    assert.ok(dashboardUrl, printed.join("\n"));
    const page = await fetch(dashboardUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>Cloister dashboard<\/title>/);
    const fromOrigin = (origin: string) => fetch(network.endpoints.rpc, { method: "POST", headers: { origin, "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId" }) });
    assert.equal((await fromOrigin(new URL(dashboardUrl).origin)).status, 200);
    assert.equal((await fromOrigin("http://localhost:5173")).status, 200);
    assert.equal((await fromOrigin("https://evil.example")).status, 403);
    assert.match(stderr, /SIMULATED/);
    // The limit flags reach the servers.
    const batch = (n: number) => Array.from({ length: n }, (_, id) => ({ jsonrpc: "2.0", id, method: "eth_chainId" }));
    const post = async (body: unknown) => (await (await fetch(network.endpoints.rpc, { method: "POST", body: JSON.stringify(body) })).json()) as unknown;
    assert.equal(((await post(batch(70))) as unknown[]).length, 70);
    assert.match(((await post(batch(71))) as { error: { message: string } }).error.message, /limit of 70/);

    const reader = createReaderClient({ endpoint: { rpcUrl: network.endpoints.rpc }, chain: chainDefinition(network.chainId, network.endpoints.rpc) });
    const accounts = JSON.parse((await cloister(["devnet", "accounts", "--json"])).stdout) as { accounts: { index: number; address: Address }[] };
    assert.equal(accounts.accounts.length, 10);
    for (const { address } of accounts.accounts) {
      assert.equal(await getBalance(reader, { address }), 10_000n * 10n ** 18n, `${address} holds native currency`);
      assert.equal(await readTokenBalance(reader, network.testToken!, address), testTokenPerAccount, `${address} holds the test token`);
    }

    const input = join(dir, "input.txt");
    const text = `hello ${randomBytes(8).toString("hex")}`;
    await writeFile(input, text);
    const task = await cloister(["task", "run", echo, "--input", input, "--network", netDir, "--account", "3", "--json"]);
    const result = JSON.parse(task.stdout.trim().split("\n").at(-1)!) as TaskJson;
    assert.equal(result.output, text);
    assert.equal(result.verified, true);
    assert.equal(result.enclave.signer, nodeSigner);
    assert.equal(result.requester, accounts.accounts[3]!.address);
    assert.equal(task.stderr, "", "no progress in a pipe");
    // The chain agrees: the task was submitted by account 3.
    const logs = await getLogs(reader, { address: network.deployment.market, fromBlock: network.deployment.deployBlock, toBlock: "latest" });
    const submitted = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskSubmitted" }).find((l) => l.args.taskId === BigInt(result.taskId));
    assert.equal(submitted?.args.requester, accounts.accounts[3]!.address);
    // The nodes report to devnet up only the events it shows, and those still arrive.
    for (const deadline = Date.now() + 5_000; !/node 0: task-completed/.test(stderr) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /node 0: task-accepted .*\n[^]*node 0: task-completed /);

    // verify checks the task against the same network.
    const verified = await cloister(["verify", result.taskId, "--network", join(netDir, "network.json"), "--json"]);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

    // CLOISTER_NETWORK names the network just as --network does.
    const fromEnv = await cloister(["task", "run", echo, "--input", input, "--account", "0", "--json"], { CLOISTER_NETWORK: netDir });
    assert.equal((JSON.parse(fromEnv.stdout) as TaskJson).requester, accounts.accounts[0]!.address);

    // The single flags still reach any chain and IPFS node, signing with CLOISTER_PRIVATE_KEY.
    const key = `0x${Buffer.from(mnemonicToAccount(testMnemonic, { addressIndex: 7 }).getHdKey().privateKey!).toString("hex")}`;
    const flags = ["--rpc", network.endpoints.rpc, "--ws", network.endpoints.ws!, "--ipfs", network.endpoints.ipfs, "--cas", network.endpoints.cas!, "--sim-pki", join(netDir, "sim-tee")];
    const single = await cloister(["task", "run", echo, "--input", input, ...flags, "--json"], { CLOISTER_PRIVATE_KEY: key });
    assert.equal((JSON.parse(single.stdout) as TaskJson).requester, accounts.accounts[7]!.address);

    // A single flag overrides the file's value: this chain endpoint does not answer.
    await assert.rejects(cloister(["task", "run", echo, "--input", input, "--network", netDir, "--account", "1", "--rpc", "http://127.0.0.1:1"]), (e: { code: number; stderr: string }) => e.code === 1 && /127\.0\.0\.1:1/.test(e.stderr));
    // Against a running network, someone must sign.
    await assert.rejects(cloister(["task", "run", echo, "--input", input, "--network", netDir]), (e: { code: number; stderr: string }) => e.code === 2 && /--account <0-9>/.test(e.stderr));
    await assert.rejects(cloister(["task", "run", echo, "--input", input, "--network", netDir, "--account", "10"]), (e: { code: number; stderr: string }) => e.code === 2 && /from 0 to 9/.test(e.stderr));
    // Unusable flag combinations are usage errors (exit 2), not network errors.
    await assert.rejects(cloister(["task", "run", echo, "--input", input, "--rpc", network.endpoints.rpc]), (e: { code: number; stderr: string }) => e.code === 2 && /--ipfs/.test(e.stderr));
    await assert.rejects(cloister(["task", "run", echo, "--input", input, "--network", netDir, "--data-dir", dir]), (e: { code: number }) => e.code === 2);
    await assert.rejects(cloister(["task", "run", echo, "--input", input, ...flags, "--ws", network.endpoints.rpc]), (e: { code: number; stderr: string }) => e.code === 2 && /--ws takes/.test(e.stderr));

    devnet.kill("SIGINT");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /stopped/);
    assert.equal(existsSync(join(netDir, "network.json")), false, "a stopped devnet leaves no network file pointing at dead endpoints");
    const pids = [...stderr.matchAll(/node \d+: pid (\d+), enclave pid (\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(pids.length, 2);
    await waitUntilGone(pids);
  } finally {
    if (devnet.exitCode === null) devnet.kill("SIGKILL");
  }
});

test("devnet up refuses unusable options with exit 2", async () => {
  await assert.rejects(run(process.execPath, [cli, "devnet", "up", "--nodes", "0"]), (e: { code: number; stderr: string }) => e.code === 2 && /--nodes/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli, "devnet", "up", "--ipfs-max-upload-bytes", "0"]), (e: { code: number; stderr: string }) => e.code === 2 && /--ipfs-max-upload-bytes/.test(e.stderr));
  await assert.rejects(run(process.execPath, [cli, "devnet", "up", "--allow-origin", "localhost:5173"]), (e: { code: number; stderr: string }) => e.code === 2 && /--allow-origin: 'localhost:5173' is not an http\(s\) origin/.test(e.stderr));
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
