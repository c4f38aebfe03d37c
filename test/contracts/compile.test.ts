import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { enclaveRegistryBytecode } from "../../src/chain/abi/EnclaveRegistry.ts";
import { taskMarketAbi, taskMarketBytecode } from "../../src/chain/abi/TaskMarket.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));

test("the committed ABI modules equal a fresh compile of contracts/*.sol", async () => {
  // A full solc-js compile (a few seconds): the only way to be sure the modules are not stale.
  const { stdout } = await run(process.execPath, ["scripts/compile-contracts.ts", "--check"], { cwd: root });
  assert.match(stdout, /up to date \(7 contracts\)/);
});

test("the generated modules hold deployable bytecode and the market's ABI", () => {
  assert.match(enclaveRegistryBytecode, /^0x(?:[0-9a-f]{2})+$/);
  assert.match(taskMarketBytecode, /^0x(?:[0-9a-f]{2})+$/);
  const functions: string[] = taskMarketAbi.filter((item) => item.type === "function").map((item) => item.name);
  for (const name of ["submitTask", "acceptTask", "completeTask", "cancelTask", "reopenTask", "postOffer", "withdrawOffer", "tasks"]) {
    assert.ok(functions.includes(name), `TaskMarket ABI lacks ${name}`);
  }
});
