/**
 * Refusals of a clean-room run on a network (`devnet up`, one node per party), as `collab run <id>` shows them:
 * a node whose enclave refuses publishes the typed code on chain (RunRefused) and the requester fails at once
 * with the party's name, the code and what to do, with the CLI's exit status for it (2: a party's input cannot
 * be read; 1: any other refusal); a run whose nodes never join fails at its timeout naming them.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cleanup, cloister, exampleCopy, lastJson, startCollabDevnet, type CollabDevnet } from "./collab-network-fixture.ts";

const dirs: string[] = [];
let devnet: CollabDevnet;
before(async () => {
  devnet = await startCollabDevnet(dirs);
});
after(async () => {
  await devnet?.stop();
  await cleanup(dirs);
});

/** Creates the edited example collaboration and has each party approve it with its node (`nodes[i]`: the devnet node of party i). */
async function approvedOnNodes(edit: Parameters<typeof exampleCopy>[1], nodes = [0, 1]): Promise<{ id: string; dir: string }> {
  const { dir, file } = await exampleCopy(dirs, edit);
  const net = ["--network", devnet.netDir];
  const created = await cloister(["collab", "create", file, ...net, "--account", "0", "--json"]);
  assert.equal(created.code, 0, created.stderr);
  const id = lastJson(created.stdout).collaboration as string;
  for (const [party, name] of ["retailer", "bank"].entries()) {
    const approved = await cloister(["collab", "approve", id, "--party", name, "--file", file, "--node", devnet.signers[nodes[party]!]!, ...net, "--account", String(party)]);
    assert.equal(approved.code, 0, approved.stderr);
  }
  return { id, dir };
}

/** `collab run <id>` by the retailer, timed. */
async function run(id: string, timeoutSec: number) {
  const started = Date.now();
  const out = await cloister(["collab", "run", id, "--network", devnet.netDir, "--account", "0", "--timeout", String(timeoutSec)]);
  return { ...out, seconds: (Date.now() - started) / 1000 };
}

test("a partner's dataset file is missing on its node: its enclave's CONNECTOR_FILE_NOT_FOUND reaches collab run at once, exit 2", async () => {
  // The compute enclave gives up on the partner's rows after 5 s, so the nodes are free for the next test.
  const { id, dir } = await approvedOnNodes((file) => (file.limits = { partnerTimeoutMs: 5_000 }));
  await rm(join(dir, "cards.parquet"));
  const r = await run(id, 120);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /party bank's node refused: CONNECTOR_FILE_NOT_FOUND: a dataset file is missing on the party's node/);
  assert.ok(r.seconds < 60, `refused after ${r.seconds} s, not at the timeout`);
  // Only the code left the node: no path of the party's data in what the requester saw.
  assert.ok(!r.stderr.includes("cards.parquet") && !r.stderr.includes(dir), r.stderr);
});

test("a row-level query: the enclaves' ROW_LEVEL_OUTPUT reaches collab run at once, exit 1, with what to do", async () => {
  const { id } = await approvedOnNodes((file) => (file.query = "SELECT p.customer_id, p.amount FROM purchases p JOIN cards c ON p.customer_id = c.customer_id"));
  const r = await run(id, 120);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\[ROW_LEVEL_OUTPUT\] party (retailer|bank)'s node refused: ROW_LEVEL_OUTPUT: the query outputs rows, not aggregates/);
  assert.ok(r.seconds < 60, `refused after ${r.seconds} s, not at the timeout`);
  const status = lastJson((await cloister(["collab", "status", id, "--network", devnet.netDir, "--json"])).stdout) as { runs: number };
  assert.equal(status.runs, 0, "a refused run is not recorded");
});

test("a party whose node never runs its side (both parties assigned the same node): collab run fails at its timeout naming the parties that never joined", async () => {
  const { id } = await approvedOnNodes(() => {}, [0, 0]);
  const r = await run(id, 4);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\[COLLAB_RUN_TIMEOUT\] run 1 of collaboration 0x[0-9a-f]{64} was not recorded within 4 s; never joined: [^;]*\bbank\b/);
});
