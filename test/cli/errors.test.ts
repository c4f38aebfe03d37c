/**
 * The CLI's failures carry a typed error's details, and --json adds them, as one JSON object, on the
 * last line of stderr (stdout stays for results).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { CasError } from "../../src/cas/errors.ts";
import { describeFailure, UsageError } from "../../src/cli/errors.ts";
import { CloisterError } from "../../src/util/base-error.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;

async function cloister(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...process.env, CLOISTER_NETWORK: "" } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("a typed error's details are part of the failure; errors without details add none", () => {
  const refused = new CasError("EVIDENCE_REFUSED", "the evidence was refused", ["TCB status OutOfDate"]);
  assert.ok(refused instanceof CloisterError);
  assert.deepEqual(describeFailure(refused, "task run"), { exitCode: 1, code: "EVIDENCE_REFUSED", message: "the evidence was refused", details: { reasons: ["TCB status OutOfDate"] } });
  assert.deepEqual(describeFailure(new UsageError("bad"), "task run"), { exitCode: 2, code: "USAGE", message: "bad" });
  assert.equal("details" in describeFailure(Object.assign(new Error("x"), { code: "SOME_CODE", details: { secret: 1 } }), undefined), false, "only a CloisterError's details are trusted to be safe");
});

test("with --json a failure ends stderr with {error: {code, message}} and prints nothing on stdout", async () => {
  const r = await cloister(["devnet", "up", "--nodes", "many", "--json"]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.match(lines[0]!, /^cloister: .*--nodes/, "the human line comes first, as without --json");
  const last = JSON.parse(lines.at(-1)!) as { error: { code: string; message: string } };
  assert.equal(last.error.code, "USAGE");
  assert.match(last.error.message, /--nodes/);
  const plain = await cloister(["devnet", "up", "--nodes", "many"]);
  assert.equal(plain.stderr.trim().split("\n").length, 1, "without --json, one line");
});
