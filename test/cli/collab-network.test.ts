/** `cloister collab create | approve | run | withdraw | status | runs` against a running devnet (`devnet up`, one node per party), as users run them. */
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { cleanup, cloister, exampleCopy, lastJson, startCollabDevnet } from "./collab-network-fixture.ts";

const dirs: string[] = [];
after(() => cleanup(dirs));

test("collab create, approve with each party's node (the bank's with its own chain endpoint), run <id> by the nodes: rows delivered and verified; a withdrawn approval stops the next run", async () => {
  const devnet = await startCollabDevnet(dirs);
  const { netDir, signers, rpc, ipfs } = devnet;
  try {
    assert.equal(signers.length, 2, "devnet up names both nodes' enclaves");
    // The bank names the devnet's RPC as its chain endpoint: its node's enclave proves the approvals stand before it sends a row.
    const { file: collabFile } = await exampleCopy(dirs, (file) => (file.parties[1]!.chainView = { endpoints: [rpc], quorum: 1, finalityDepth: 0 }));
    const created = await cloister(["collab", "create", collabFile, "--network", netDir, "--account", "0", "--json"]);
    assert.equal(created.code, 0, created.stderr);
    const { collaboration: id, recipientKeyFile } = lastJson(created.stdout) as { collaboration: string; recipientKeyFile: string };
    assert.match(id, /^0x[0-9a-f]{64}$/);
    assert.equal((await stat(recipientKeyFile)).mode & 0o777, 0o600, "the recipient's key is readable by its owner only");

    const before = lastJson((await cloister(["collab", "status", id, "--network", netDir, "--json"])).stdout) as { approved: boolean; parties: { approved: boolean }[]; runs: number; maxRuns: number };
    assert.equal(before.approved, false);
    assert.deepEqual(before.parties.map((p) => p.approved), [false, false]);
    assert.equal(before.maxRuns, 10);

    // The retailer (compute and recipient) approves without a node first: a run cannot be requested yet.
    assert.equal((await cloister(["collab", "approve", id, "--network", netDir, "--account", "0"])).code, 0);
    const notParty = await cloister(["collab", "approve", id, "--network", netDir, "--account", "2"]);
    assert.equal(notParty.code, 2);
    assert.match(notParty.stderr, /is not a party/);
    const wrongName = await cloister(["collab", "approve", id, "--party", "retailer", "--file", collabFile, "--network", netDir, "--account", "1"]);
    assert.equal(wrongName.code, 2);
    assert.match(wrongName.stderr, /not the signing account's party/);
    const bank = await cloister(["collab", "approve", id, "--party", "bank", "--file", collabFile, "--node", signers[1]!, "--network", netDir, "--account", "1", "--json"]);
    assert.equal(bank.code, 0, bank.stderr);
    assert.equal(lastJson(bank.stdout).node, signers[1]);
    // The bank's run kit on IPFS carries its descriptors sealed to its node's enclave: no path, type or table name in clear.
    const kit = await (await fetch(`${ipfs}/api/v0/cat?arg=${lastJson(bank.stdout).kit as string}`, { method: "POST" })).text();
    const parsed = JSON.parse(kit) as { format: string; party: number; datasets: string };
    assert.deepEqual([parsed.format, parsed.party], ["cloister-collab-kit/v1", 1]);
    assert.ok(parsed.datasets.length > 0);
    for (const clear of ["cards.parquet", "parquet", "\"cards\"", rpc]) assert.ok(!kit.includes(clear), `the kit shows ${clear} in clear`);
    const after = lastJson((await cloister(["collab", "status", id, "--network", netDir, "--json"])).stdout) as { approved: boolean };
    assert.equal(after.approved, true);
    assert.deepEqual(lastJson((await cloister(["collab", "runs", id, "--network", netDir, "--json"])).stdout).runs, []);
    const early = await cloister(["collab", "run", id, "--network", netDir, "--account", "0"]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /NodesNotAssigned/);
    // Its approval stands: --node only assigns its node (the compute enclave), with the recipient key beside the file.
    const retailer = await cloister(["collab", "approve", id, "--party", "retailer", "--file", collabFile, "--node", signers[0]!, "--network", netDir, "--account", "0", "--json"]);
    assert.equal(retailer.code, 0, retailer.stderr);
    assert.equal(lastJson(retailer.stdout).gasUsed, "0");

    const run = await cloister(["collab", "run", id, "--key", recipientKeyFile, "--network", netDir, "--account", "0", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const out = lastJson(run.stdout) as { collaboration: string; run: number; columns: string[]; rows: unknown[][]; suppressed: number; provenance: string; verified: boolean; releaseProved: boolean };
    assert.equal(out.collaboration, id);
    assert.equal(out.run, 1);
    assert.equal(out.verified, true);
    assert.equal(out.releaseProved, false, "the retailer (compute) names no chain endpoints: its release is not proved");
    assert.deepEqual(out.columns, ["category", "customers", "total"]);
    // The groups the embedded run delivers from the example's data (test/cli/collab-run.test.ts), each of at least 5 customers.
    assert.deepEqual(out.rows.map((r) => r[0]), ["books", "electronics", "garden"]);
    assert.ok(out.rows.every((r) => Number(r[1]) >= 5), JSON.stringify(out.rows));
    assert.equal(out.suppressed, 1);
    assert.match(out.provenance, /^baf/);
    const runs = lastJson((await cloister(["collab", "runs", id, "--network", netDir, "--json"])).stdout).runs as { run: number; rowsDelivered: string }[];
    assert.deepEqual(runs.map((r) => [r.run, r.rowsDelivered]), [[1, "3"]]);
    // The recipient party's node keeps the sealed result; the bank's does not.
    const kept = await readdir(join(netDir, "nodes", "0", "collab-results"));
    assert.equal(kept.length, 1);
    await assert.rejects(readdir(join(netDir, "nodes", "1", "collab-results")));

    // Without the recipient's key the run is verified but shows no rows.
    const bankRun = await cloister(["collab", "run", id, "--network", netDir, "--account", "1", "--json"]);
    assert.equal(bankRun.code, 0, bankRun.stderr);
    const bankOut = lastJson(bankRun.stdout);
    assert.equal(bankOut.run, 2);
    assert.equal(bankOut.verified, true);
    assert.equal(bankOut.rows, undefined);

    assert.equal((await cloister(["collab", "withdraw", id, "--network", netDir, "--account", "1"])).code, 0);
    const stopped = await cloister(["collab", "run", id, "--key", recipientKeyFile, "--network", netDir, "--account", "0"]);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /NotApprovedByAll/);
    assert.equal((lastJson((await cloister(["collab", "status", id, "--network", netDir, "--json"])).stdout) as { runs: number }).runs, 2);
  } finally {
    await devnet.stop();
  }
});
