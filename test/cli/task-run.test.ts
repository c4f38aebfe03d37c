/** `cloister task run` as a user runs it: a child process, output on stdout, state under --data-dir. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const echo = new URL("../../examples/echo.js", import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-cli-"));
  dirs.push(dir);
  return dir;
}

test("task run prints the echoed input, keeps state under --data-dir, and leaves no plaintext there", async () => {
  const dir = await tempDir();
  const canary = `canary-${randomBytes(12).toString("hex")}`;
  const input = join(dir, "input.txt");
  await writeFile(input, `hello ${canary}\n`);
  const dataDir = join(dir, "state");

  // Progress shows on a terminal, or with CLOISTER_PROGRESS=1 in a pipe.
  const first = await run(process.execPath, [cli, "task", "run", echo, "--input", input, "--data-dir", dataDir], { env: { ...process.env, CLOISTER_PROGRESS: "1" } });
  assert.equal(first.stdout, `hello ${canary}\n`);
  assert.match(first.stderr, /result verified/);
  assert.match(first.stderr, /SIMULATED/);

  // The second run resumes the same chain, store and enclave identity from the data dir.
  const second = await run(process.execPath, [cli, "task", "run", echo, "--input", input, "--data-dir", dataDir, "--json"], { env: { ...process.env, CLOISTER_PROGRESS: "" } });
  const json = JSON.parse(second.stdout.trim().split("\n").at(-1)!);
  assert.equal(json.output, `hello ${canary}\n`);
  assert.equal(json.verified, true);
  assert.equal(json.enclave.simulated, true);
  assert.match(second.stderr, /^$/, "quiet in a pipe");
  assert.match(json.requester, /^0x[0-9a-fA-F]{40}$/);

  const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  for (const part of ["blocks.jsonl", "host.log", "sealed-keys.bin", "deployment.json"]) {
    assert.ok(files.some((f) => f.endsWith(part)), `${part} is under the data dir`);
  }
  assert.ok(files.some((f) => f.includes(join("ipfs", "blocks"))), "IPFS blocks are under the data dir");
  for (const file of files) {
    const bytes = await readFile(file);
    assert.equal(bytes.includes(Buffer.from(canary)), false, `${file} contains the canary`);
    assert.equal(bytes.includes(Buffer.from(Buffer.from(canary).toString("hex"))), false, `${file} contains the canary in hex`);
  }
});

test("task run explains what is missing and exits 2", async () => {
  await assert.rejects(run(process.execPath, [cli, "task", "run", echo]), (e: { code: number; stderr: string }) => e.code === 2 && /--input/.test(e.stderr));
  await assert.rejects(
    run(process.execPath, [cli, "task", "run", "no-such-program.js", "--input", echo]),
    (e: { code: number; stderr: string }) => e.code === 2 && /no such file/.test(e.stderr),
  );
});
