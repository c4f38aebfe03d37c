/** A node's chain follower migrates the checkpoint files of earlier versions once, and refuses ones it cannot read. */
import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createReaderClient } from "../../src/chain/clients.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { LegacyCheckpointError, openNodeFollower } from "../../src/host/node-follower.ts";

let chain: LocalChain;
let dir: string;
before(async () => {
  chain = await startLocalChain({ operators: 0 });
  dir = await mkdtemp(join(tmpdir(), "cloister-node-follower-"));
});
after(async () => {
  await chain?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const open = (dataDir: string) => openNodeFollower(dataDir, { reader: createReaderClient({ endpoint: { provider: chain.provider }, chain: chain.chain }), pollIntervalMs: 20, onError: () => {} });
const exists = (path: string) => access(path).then(() => true, () => false);
const attempts = [{ taskId: "7", enclave: "0x0000000000000000000000000000000000000001", operator: "0x0000000000000000000000000000000000000002", price: "5", deposit: "6", attempt: 1, deadline: "1700000000" }];

async function nodeDir(name: string, files: Record<string, unknown>): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(d, file), typeof content === "string" ? content : JSON.stringify(content));
  return d;
}

test("both files of an earlier version become the positions of the task watcher and the reopen keeper, and are deleted", async () => {
  const d = await nodeDir("both", { "checkpoint.json": { block: "41" }, "reopen-keeper.json": { version: 2, block: "40", attempts } });
  open(d);
  const saved = JSON.parse(await readFile(join(d, "chain-checkpoint.json"), "utf8")) as unknown;
  assert.deepEqual(saved, { version: 1, positions: { tasks: { block: "41" }, reopens: { block: "40", state: attempts } } });
  assert.equal(await exists(join(d, "checkpoint.json")), false);
  assert.equal(await exists(join(d, "reopen-keeper.json")), false);
  // Read once: opening again reads the new file only.
  await writeFile(join(d, "checkpoint.json"), JSON.stringify({ block: "99" }));
  open(d);
  assert.deepEqual(JSON.parse(await readFile(join(d, "chain-checkpoint.json"), "utf8")), saved, "a leftover old file does not override the new one");
  assert.equal(await exists(join(d, "checkpoint.json")), false);
});

test("a reopen keeper view of the oldest format is dropped: the keeper reads again from the deployment block", async () => {
  const d = await nodeDir("oldest", { "reopen-keeper.json": { block: "40", tasks: [] } });
  open(d);
  assert.deepEqual(JSON.parse(await readFile(join(d, "chain-checkpoint.json"), "utf8")), { version: 1, positions: {} });
});

test("an old file that cannot be read is a typed error naming it, and nothing is migrated", async () => {
  for (const [name, content] of [["garbled", "{not json"], ["no-block", { block: 12 }]] as const) {
    const d = await nodeDir(name, { "checkpoint.json": content });
    assert.throws(() => open(d), (e) => e instanceof LegacyCheckpointError && e.code === "LEGACY_CHECKPOINT" && e.message.includes(join(d, "checkpoint.json")));
    assert.equal(await exists(join(d, "chain-checkpoint.json")), false);
  }
});
