/**
 * The node's relay flags (src/host/main.ts): a bad --relay-bind or
 * --relay-advertise is a configuration error (exit 2) that names the flag,
 * caught before the node reaches any server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const NODE_MAIN = fileURLToPath(new URL("../../src/host/main.ts", import.meta.url));
const required = ["--rpc", "http://127.0.0.1:9", "--ipfs", "http://127.0.0.1:9", "--cas", "http://127.0.0.1:9", "--data-dir", "/nonexistent", "--sim-pki", "/nonexistent"];

function run(args: string[]) {
  return spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", NODE_MAIN, ...required, ...args], {
    env: { ...process.env, CLOISTER_OPERATOR_KEY: `0x${"11".repeat(32)}` },
    encoding: "utf8",
  });
}

for (const flag of ["--relay-bind", "--relay-advertise"]) {
  test(`${flag} with something that is not a host is refused with exit 2`, () => {
    const r = run([flag, "10.0.0.1:80"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${flag} takes a host name or IP address, got '10\\.0\\.0\\.1:80'`));
  });
}

test("--relay-bind with a name that is not a host name is refused with exit 2", () => {
  const r = run(["--relay-bind", "not a host!"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--relay-bind takes a host name or IP address/);
});
