/** `cloister policy show`: the manifest a command would trust and its digest; its --json output is a manifest file (the conversion of an old policy file). */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { manifestDigest, parseManifest, policyForRole, productionManifest } from "../../src/attestation/manifest/index.ts";
import { writeNetworkFile } from "../../src/devnet/network-file.ts";

const cli = fileURLToPath(new URL("../../bin/cloister.js", import.meta.url));
const measurement = "ab".repeat(32);
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-policy-show-"));
});
after(() => rm(dir, { recursive: true, force: true }));

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 30_000, env: { ...process.env, CLOISTER_NETWORK: "" } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

test("without flags it shows the strict production manifest and its digest", async () => {
  const run = await runCli(["policy", "show"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /strict production manifest/);
  assert.ok(run.stdout.includes(manifestDigest(productionManifest())), run.stdout);
  assert.match(run.stdout, /simulation refused; debug refused/);
  assert.match(run.stdout, /role +task: cloister-released/);
  assert.match(run.stdout, /registration +86400 s/);
});

test("--json prints an old policy file as a manifest file, which loads to the same code and digest", async () => {
  const old = join(dir, "old-policy.json");
  await writeFile(old, JSON.stringify({ allowSimulation: false, measurements: [measurement] }));
  const run = await runCli(["policy", "show", "--policy", old, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /old policy file/);
  const converted = parseManifest(JSON.parse(run.stdout));
  assert.deepEqual(policyForRole(converted, "task").measurements, [measurement]);
  assert.ok(run.stderr.includes(manifestDigest(converted)), run.stderr);
  const manifestFile = join(dir, "manifest.json");
  await writeFile(manifestFile, run.stdout);
  const again = await runCli(["policy", "show", "--policy", manifestFile]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr, "", "a manifest file needs no conversion note");
  assert.ok(again.stdout.includes(manifestDigest(converted)));
});

test("--network shows the manifest the network file names, by the digest it names", async () => {
  const netDir = join(dir, "net");
  await mkdir(netDir);
  const manifest = parseManifest({ version: 1, name: "a-devnet", packages: { enclave: { measurements: [measurement] } }, roles: { task: { packages: ["enclave"] } }, registration: { lifetimeSeconds: 7200 } });
  const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  await writeNetworkFile(netDir, {
    chainId: 31337, rpcUrl: "http://127.0.0.1:8545", wsUrl: "ws://127.0.0.1:8545", ipfsUrl: "http://127.0.0.1:8546", casUrl: "http://127.0.0.1:8547",
    deployment: { chainId: 31337, registry, market: registry, deployBlock: 1n }, testToken: registry, manifest,
  });
  const run = await runCli(["policy", "show", "--network", netDir]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /"a-devnet"/);
  assert.ok(run.stdout.includes(manifestDigest(manifest)), run.stdout);
  assert.match(run.stdout, new RegExp(`package +enclave: ${measurement}`));
  assert.match(run.stdout, /registration +7200 s/);
});

test("an invalid manifest or a bad command is a usage error (exit 2)", async () => {
  const bad = join(dir, "bad.json");
  await writeFile(bad, JSON.stringify({ version: 1, roles: { task: { packages: ["missing"] } } }));
  const run = await runCli(["policy", "show", "--policy", bad]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /manifest\.roles\.task\.packages\[0\]: names package "missing"/);
  assert.equal((await runCli(["policy", "list"])).code, 2);
  const help = await runCli(["policy", "show", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /cloister policy show/);
});
