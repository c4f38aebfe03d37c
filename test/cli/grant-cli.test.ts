/**
 * The grant commands on a running multi-process devnet, as an owner (account 0) and an operator
 * (account 1) would type them: the operator registers its own enclave, the owner grants one statement
 * once, the operator's use runs and is recorded, a second use and another statement are refused with
 * the violated limit, the owner lists the grant and its use, and revokes it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { mnemonicToAccount } from "viem/accounts";
import { testMnemonic } from "../../src/chain/dev-accounts.ts";
import { startMultiProcessDevnet, type MultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const operator = mnemonicToAccount(testMnemonic, { addressIndex: 1 }).address;
const owner = mnemonicToAccount(testMnemonic, { addressIndex: 0 }).address;

let dir: string;
let devnet: MultiProcessDevnet;
let work: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-grant-cli-"));
  work = join(dir, "work");
  devnet = await startMultiProcessDevnet({ dataDir: join(dir, "devnet"), nodes: 1 });
  await run("mkdir", ["-p", work]);
  const instance = await DuckDBInstance.create(join(work, "ledger.duckdb"));
  const connection = await instance.connect();
  await connection.run("CREATE TABLE accounts (id INTEGER PRIMARY KEY, holder VARCHAR, balance INTEGER)");
  await connection.run("INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50)");
  connection.closeSync();
  instance.closeSync();
  // The owner's own chain endpoint sealed with the dataset: the enclave proves the grant at the block its quorum gives.
  const chainView = { endpoints: [devnet.rpcUrl], quorum: 1, finalityDepth: 0 };
  await writeFile(join(work, "datasets.json"), JSON.stringify({ ledger: { table: "accounts", connection: { type: "duckdb", path: join(work, "ledger.duckdb") }, chainView } }));
  await writeFile(join(work, "bad-quorum.json"), JSON.stringify({ ledger: { table: "accounts", connection: { type: "duckdb", path: join(work, "ledger.duckdb") }, chainView: { ...chainView, quorum: 2 } } }));
  await writeFile(join(work, "fix.sql"), "UPDATE accounts SET balance = balance + 25 WHERE id = 2\n");
  await writeFile(join(work, "other.sql"), "UPDATE accounts SET balance = 0 WHERE id = 2\n");
});

after(async () => {
  await devnet?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cloister(args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args, "--network", join(dir, "devnet")], { cwd: work, env: { ...process.env, CLOISTER_PROGRESS: "", CLOISTER_NETWORK: "" } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const lastJson = (r: Ran) => JSON.parse(r.stdout.trim().split("\n").at(-1)!);

test("grant create, operate, refusals, list, uses and revoke on a devnet", async () => {
  const registered = await cloister(["operate", "register", "--account", "1", "--json"]);
  assert.equal(registered.code, 0, registered.stderr);
  const enclave = lastJson(registered).enclave;
  assert.match(enclave, /^0x[0-9a-fA-F]{40}$/);

  const created = await cloister([
    "grant", "create", "--account", "0", "--dataset", "ledger", "--datasets", "datasets.json", "--ops", "update", "--statement", "fix.sql",
    "--purpose", "credit bob (ticket 42)", "--expires", "1h", "--uses", "1", "--operator", operator, "--out", "grant.json", "--json",
  ]);
  assert.equal(created.code, 0, created.stderr);
  const grant = lastJson(created);
  assert.deepEqual(grant.enclaves, [enclave]);
  assert.equal(grant.owner, owner);

  const other = await cloister(["operate", grant.grantId, "--statement", "other.sql", "--grant", "grant.json", "--account", "1"]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /\[GRANT_STATEMENT_NOT_GRANTED\]/);

  const used = await cloister(["operate", grant.grantId, "--statement", "fix.sql", "--grant", grant.documentCid, "--account", "1", "--json"]);
  assert.equal(used.code, 0, used.stderr);
  const use = lastJson(used);
  assert.equal(use.rowsAffected, 1);
  assert.equal(use.recorded, true);
  assert.equal(use.provedAt.chosenBy, "owner-endpoints", "the enclave proved the grant at the block the owner's endpoints gave");

  const store = openKuboStore(devnet.ipfsUrl);
  await writeFile(join(work, "use.prov.json"), await store.get(use.provenance));
  await store.close();
  const verified = await cloister(["verify", "use.prov.json", "--json"]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const verdict = lastJson(verified);
  assert.equal(verdict.job.kind, "operate");
  assert.deepEqual(verdict.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]), [["signature", true], ["attestation", true], ["anchor", true]]);

  const again = await cloister(["operate", grant.grantId, "--statement", "fix.sql", "--grant", "grant.json", "--account", "1"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /\[GRANT_USED_UP\]/);

  const listed = lastJson(await cloister(["grant", "list", "--account", "0", "--json"]));
  const mine = listed.grants.find((g: { grantId: string }) => g.grantId === grant.grantId);
  assert.equal(mine.uses, 1);
  assert.equal(mine.purpose, "credit bob (ticket 42)");
  const byOperator = lastJson(await cloister(["grant", "list", "--operator", operator, "--json"]));
  assert.ok(byOperator.grants.some((g: { grantId: string }) => g.grantId === grant.grantId));

  const uses = lastJson(await cloister(["grant", "uses", grant.grantId, "--json"]));
  assert.deepEqual(uses.uses.map((u: { runId: string; enclave: string; provenanceDigest: string }) => [u.runId, u.enclave, u.provenanceDigest]), [[use.runId, enclave, use.provenanceDigest]]);
  // What was done, from the use's provenance record on IPFS, found by the digest the chain holds.
  assert.equal(uses.uses[0].provenance, use.provenance);
  assert.equal(uses.uses[0].operation, "update");
  assert.equal(uses.uses[0].table, "accounts");
  assert.equal(uses.uses[0].rowsAffected, 1);

  const notMine = await cloister(["grant", "revoke", grant.grantId, "--account", "1"]);
  assert.equal(notMine.code, 2);
  assert.match(notMine.stderr, /only its owner may revoke/);
  const revoked = await cloister(["grant", "revoke", grant.grantId, "--account", "0", "--datasets", "datasets.json", "--json"]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(lastJson(revoked).markedInDataset, "ledger");
  assert.equal(lastJson(await cloister(["grant", "uses", grant.grantId, "--json"])).revoked, true);
});

test("a granted read prints the rows to the operator only", async () => {
  await writeFile(join(work, "read.sql"), "SELECT holder, balance FROM accounts WHERE id = 1\n");
  const registered = await cloister(["operate", "register", "--account", "1", "--json"]);
  assert.equal(registered.code, 0, registered.stderr);
  const created = await cloister([
    "grant", "create", "--account", "0", "--dataset", "ledger", "--datasets", "datasets.json", "--ops", "read", "--statement", "read.sql",
    "--purpose", "look up ada", "--expires", "10m", "--uses", "1", "--operator", operator, "--out", "read-grant.json", "--json",
  ]);
  assert.equal(created.code, 0, created.stderr);
  const grant = lastJson(created);
  const read = await cloister(["operate", grant.grantId, "--statement", "read.sql", "--grant", "read-grant.json", "--account", "1", "--json"]);
  assert.equal(read.code, 0, read.stderr);
  const out = lastJson(read);
  assert.equal(out.operation, "read");
  assert.deepEqual(out.rows, { columns: ["holder", "balance"], rows: [["ada", "100"]] });
});

test("grant create says what is missing", async () => {
  const r = await cloister(["grant", "create", "--account", "0", "--dataset", "ledger"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--ops/);
  const noOperatorEnclave = await cloister([
    "grant", "create", "--account", "0", "--dataset", "ledger", "--datasets", "datasets.json", "--ops", "update", "--statement", "fix.sql",
    "--purpose", "p", "--expires", "1h", "--uses", "1", "--operator", mnemonicToAccount(testMnemonic, { addressIndex: 5 }).address,
  ]);
  assert.equal(noOperatorEnclave.code, 2);
  assert.match(noOperatorEnclave.stderr, /operate register/);
  const badQuorum = await cloister([
    "grant", "create", "--account", "0", "--dataset", "ledger", "--datasets", "bad-quorum.json", "--ops", "update", "--statement", "fix.sql",
    "--purpose", "p", "--expires", "1h", "--uses", "1", "--operator", operator,
  ]);
  assert.equal(badQuorum.code, 2);
  assert.match(badQuorum.stderr, /ledger\.chainView\.quorum: quorum must be a majority/);
});
