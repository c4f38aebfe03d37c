/**
 * The CLI's manners, for every command and subcommand its usage lists: --help and -h print that
 * command's usage and exit 0, as does `cloister help <command>`; an unknown option exits 2 with a
 * message naming it and pointing to --help; --json output parses; exit codes come from one mapping.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mnemonicToAccount } from "viem/accounts";
import { describeFailure, UsageError } from "../../src/cli/errors.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const testdata = fileURLToPath(new URL("../../../shared/testdata/attestation/", import.meta.url));
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cloister(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, CLOISTER_NETWORK: "", ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function lastJsonLine(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

/** The commands `cloister help` lists: "cloister <words> ..." lines, words being what precedes the first argument. */
async function listedCommands(): Promise<string[]> {
  const { code, stdout } = await cloister(["help"]);
  assert.equal(code, 0);
  const commands = stdout
    .split("\n")
    .map((line) => line.match(/^ {2}cloister ((?:[a-z]+ ?)+)/)?.[1]?.trim())
    .filter((c): c is string => c !== undefined);
  return [...new Set(commands)];
}

test("the usage lists every command and subcommand", async () => {
  assert.deepEqual(await listedCommands(), [
    "demo",
    "demo grants",
    "demo vault",
    "task run",
    "pipeline run",
    "collab run",
    "attest verify",
    "attest policy init",
    "attest policy schema",
    "policy show",
    "verify",
    "grant create",
    "operate",
    "devnet up",
    "vault store",
    "vault status",
    "vault get",
    "vault transfer",
    "vault burn",
    "vault reshare",
    "devnet accounts",
    "dashboard",
    "help",
  ]);
});

test("--help, -h and 'cloister help <command>' print the command's usage and exit 0", async () => {
  for (const words of await listedCommands()) {
    const argv = words.split(" ");
    for (const args of [[...argv, "--help"], [...argv, "-h"], ["help", ...argv]]) {
      const r = await cloister(args);
      assert.equal(r.code, 0, `cloister ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage:/, `cloister ${args.join(" ")}`);
      assert.ok(r.stdout.includes(`cloister ${words}`), `cloister ${args.join(" ")} prints the usage of 'cloister ${words}'`);
    }
  }
  // Anywhere on the line, even after other arguments.
  const late = await cloister(["task", "run", "program.js", "--input", "in.txt", "--help"]);
  assert.equal(late.code, 0);
  assert.match(late.stdout, /--network <dir \| file>/);
});

test("an unknown option exits 2, names the option and points to the command's --help, and prints no result with --json", async () => {
  for (const words of await listedCommands()) {
    const r = await cloister([...words.split(" "), "--no-such-option", "--json"]);
    assert.equal(r.code, 2, `cloister ${words} --no-such-option: ${r.stderr}`);
    assert.match(r.stderr, /unknown option '--no-such-option'/, `cloister ${words}`);
    assert.ok(r.stderr.includes(`cloister ${words} --help`), `cloister ${words} points to its --help: ${r.stderr}`);
    assert.equal(r.stdout, "", "no result on stdout, even with --json");
  }
  const unknownCommand = await cloister(["frobnicate"]);
  assert.equal(unknownCommand.code, 2);
  assert.match(unknownCommand.stderr, /unknown command 'frobnicate'.*cloister help/);
  assert.equal((await cloister(["help", "frobnicate"])).code, 2);
});

test("--json output parses (commands that need no running network)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-manners-"));
  dirs.push(dir);
  const help = await cloister(["help", "task", "run", "--json"]);
  assert.equal(lastJsonLine(help.stdout).command, "task run");

  const init = await cloister(["attest", "policy", "init", join(dir, "p.jsonc"), "--json"]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(lastJsonLine(init.stdout).wrote, join(dir, "p.jsonc"));

  const schema = await cloister(["attest", "policy", "schema", "--json"]);
  assert.equal(lastJsonLine(schema.stdout).type, "object");

  const quote = await cloister(["attest", "verify", join(testdata, "sgx_v3_quote.bin"), "--collateral", join(testdata, "sgx_v3_collateral.json"), "--now", "1751624924", "--json"]);
  assert.equal(lastJsonLine(quote.stdout).teeType, "SGX");

  // The demo tells its steps on stderr; with --json in a pipe it prints only its result.
  const demo = await cloister(["demo", "--json"], { CLOISTER_PROGRESS: "" });
  assert.equal(demo.code, 0, demo.stderr);
  assert.equal(demo.stderr, "");
  const result = lastJsonLine(demo.stdout) as { verified: boolean; output: string; enclave: { simulated: boolean } };
  assert.equal(result.verified, true);
  assert.equal(result.enclave.simulated, true);
  assert.ok(JSON.parse(result.output), "the payroll statistics are JSON");

  const unreadable = await cloister(["verify", join(dir, "no-such-provenance.json"), "--json"]);
  assert.equal(unreadable.code, 2);
  assert.match(unreadable.stderr, /no such file/);
});

test("devnet accounts lists the standard test mnemonic's accounts 0 to 9, keys only on request", async () => {
  const expected = Array.from({ length: 10 }, (_, i) => mnemonicToAccount("test test test test test test test test test test test junk", { addressIndex: i }));
  const json = await cloister(["devnet", "accounts", "--json"]);
  assert.equal(json.code, 0);
  assert.deepEqual(lastJsonLine(json.stdout), { accounts: expected.map((a, index) => ({ index, address: a.address })) });

  const table = await cloister(["devnet", "accounts"]);
  for (const [i, a] of expected.entries()) assert.match(table.stdout, new RegExp(`^ +${i} +${a.address}$`, "m"));
  assert.doesNotMatch(table.stdout, /0x[0-9a-f]{64}/i, "no private key by default");

  const keys = await cloister(["devnet", "accounts", "--show-private-keys", "--json"]);
  const withKeys = lastJsonLine(keys.stdout) as { accounts: { privateKey: string }[]; warning: string };
  assert.equal(withKeys.accounts[3]!.privateKey, `0x${Buffer.from(expected[3]!.getHdKey().privateKey!).toString("hex")}`);
  assert.match(withKeys.warning, /known to everyone/);
});

test("signing needs --account on a devnet or CLOISTER_PRIVATE_KEY, and --account needs a devnet", async () => {
  const echo = new URL("../../examples/echo.js", import.meta.url).pathname;
  const flags = ["--rpc", "http://127.0.0.1:1", "--ipfs", "http://127.0.0.1:1", "--cas", "http://127.0.0.1:1"];
  const noKey = await cloister(["task", "run", echo, "--input", echo, ...flags], { CLOISTER_PRIVATE_KEY: "" });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /--account <0-9>.*CLOISTER_PRIVATE_KEY/);
  const accountWithoutDevnet = await cloister(["task", "run", echo, "--input", echo, ...flags, "--account", "1"]);
  assert.equal(accountWithoutDevnet.code, 2);
  assert.match(accountWithoutDevnet.stderr, /--account .*--network/);
  const accountOnEmbedded = await cloister(["task", "run", echo, "--input", echo, "--account", "1"]);
  assert.equal(accountOnEmbedded.code, 2);
  const badKey = await cloister(["task", "run", echo, "--input", echo, ...flags], { CLOISTER_PRIVATE_KEY: "0x1234" });
  assert.equal(badKey.code, 2);
  assert.match(badKey.stderr, /CLOISTER_PRIVATE_KEY must be/);
  // A well-formed key against an endpoint that does not answer: a failure (1) that says what to check.
  const down = await cloister(["task", "run", echo, "--input", echo, ...flags], { CLOISTER_PRIVATE_KEY: `0x${"11".repeat(32)}` });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /check that it is running \(cloister devnet up\)/);
  const missing = await cloister(["task", "run", echo, "--input", echo, "--network", join(tmpdir(), "no-such-devnet")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--network: no network file or devnet directory/);
  const fromEnv = await cloister(["task", "run", echo, "--input", echo], { CLOISTER_NETWORK: join(tmpdir(), "no-such-devnet") });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /CLOISTER_NETWORK: no network file/);
});

test("one mapping from errors to exit codes: usage 2, typed failure 1, anything else 1 with what to do next", () => {
  assert.deepEqual(describeFailure(new UsageError("bad"), "task run"), { exitCode: 2, code: "USAGE", message: "bad" });
  const typed = Object.assign(new Error("the enclave refused"), { code: "ENCLAVE_REFUSED" });
  assert.deepEqual(describeFailure(typed, "task run"), { exitCode: 1, code: "ENCLAVE_REFUSED", message: "the enclave refused" });
  const unexpected = describeFailure(new TypeError("x is undefined"), "task run");
  assert.equal(unexpected.exitCode, 1);
  assert.match(unexpected.message, /x is undefined\n.*CLOISTER_DEBUG=1/);
  const system = describeFailure(Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }), "verify");
  assert.match(system.message, /CLOISTER_DEBUG=1/);
  const refused = describeFailure(new TypeError("fetch failed", { cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED", address: "127.0.0.1", port: 1 }) }), "task run");
  assert.deepEqual([refused.exitCode, refused.code], [1, "UNREACHABLE"]);
  assert.match(refused.message, /127\.0\.0\.1:1.*devnet up/);
  const parse = describeFailure(Object.assign(new TypeError("Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--x\"'"), { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" }), "devnet up");
  assert.deepEqual(parse, { exitCode: 2, code: "USAGE", message: "unknown option '--x'; run 'cloister devnet up --help' for its usage" });
});
