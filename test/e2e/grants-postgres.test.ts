/**
 * Granted manipulations against the machine's real PostgreSQL, through a real
 * embedded network (EVM, IPFS, two nodes with enclaves in their own
 * processes): every refusal names the violated limit and changes nothing;
 * every allowed use changes the dataset once and is recorded on chain once;
 * the owner lists what was done under each grant; a canary in the rows and in
 * the database password reaches no host-visible place.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { recordGrantChain, recordPendingUses } from "../../src/host/operate-job.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { markGrantRevoked } from "../../src/enclave/jobs/operate-db.ts";
import { readGrant } from "../../src/chain/actions/read-grant.ts";
import { listGrantUses } from "../../src/chain/actions/read-grant-logs.ts";
import { revokeGrant } from "../../src/chain/actions/revoke-grant.ts";
import { consumeGrantUse } from "../../src/chain/actions/consume-grant-use.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { GrantDocument, GrantedDataset } from "../../src/protocol/operate.ts";
import { statementOfSignedEnvelope } from "../../src/protocol/provenance.ts";
import { toHex } from "viem";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { openGrantRead, sealDataset } from "../../src/sdk/grants.ts";
import { pg as server, uniqueName, unreachable } from "../enclave/connectors/servers.ts";
import { framesText, startGrantNetwork, type GrantNetwork } from "./grants-fixture.ts";

const ROW_CANARY = "canary-row-7f3a91";
const PW_CANARY = "canary-pw-c4d2e8";
const down = await unreachable(server.host, server.port);
const skip = down ? `PostgreSQL unreachable: ${down}; start it to run these tests` : false;
const table = uniqueName("cloister_grant_pg");
const role = uniqueName("cloister_grant_role");

let admin: pg.Client;
let g: GrantNetwork;
let dataset: GrantedDataset;

before(async () => {
  if (skip) return;
  admin = new pg.Client({ host: server.host, port: server.port, user: server.user, database: server.database });
  await admin.connect();
  // The role's own schema first on its search path: the run markers (cloister_grant_uses) of this run stay apart from other runs'.
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${PW_CANARY}'`);
  await admin.query(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
  await admin.query(`ALTER ROLE ${role} SET search_path = ${role}`);
  await admin.query(`SET search_path = ${role}`);
  await admin.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, holder TEXT NOT NULL, balance INT NOT NULL)`);
  await admin.query(`INSERT INTO ${table} VALUES (1, '${ROW_CANARY}', 100), (2, 'bob', 50), (3, 'carol', 10), (4, 'dan', 20)`);
  await admin.query(`GRANT ALL ON ${table} TO ${role}`);
  g = await startGrantNetwork();
  dataset = {
    name: `orders-db/${table}`,
    table,
    connection: { type: "postgres", url: `postgres://${role}:${PW_CANARY}@${server.host}:${server.port}/${server.database}` },
    registry: g.net.deployment.registry,
  };
});

after(async () => {
  if (skip) return;
  await g?.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
  await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
  await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await admin.end();
});

const balance = async (id: number) => Number((await admin.query(`SELECT balance FROM ${table} WHERE id = $1`, [id])).rows[0].balance);

async function refused(promise: Promise<unknown>, code: string): Promise<EnclaveError> {
  const error = await promise.then(
    () => assert.fail(`expected a refusal with ${code}, but the operation ran`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof EnclaveError, `expected an EnclaveError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

test("an allowed use runs once, is recorded on chain once with its provenance, and the owner lists it", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 5 WHERE id = 1`;
  const { document, grantId } = await g.grant({ dataset, statement, maxUses: 2 });
  const before1 = await balance(1);
  const run = await g.operate(document, statement);
  assert.equal(run.receipt.rowsAffected, 1);
  assert.equal(run.receipt.use, 1);
  assert.equal(await balance(1), before1 + 5);
  const state = await readGrant(g.net.requester, g.grants, grantId);
  assert.equal(state.uses, 1);
  const uses = await listGrantUses(g.net.requester, g.grants, grantId);
  assert.equal(uses.length, 1);
  assert.equal(uses[0]!.runId, run.receipt.runId);
  assert.equal(uses[0]!.provenanceDigest, run.provenanceDigest);
  assert.equal(uses[0]!.enclave, g.net.nodes[0]!.signer);
  const statementRecord = statementOfSignedEnvelope(await g.net.store.get(run.provenanceCid));
  const part = (statementRecord.predicate as { operate?: { rowsAffected: number; grantId: string; statement: { operation: string } } }).operate;
  assert.equal(part?.grantId, grantId.toString());
  assert.equal(part?.rowsAffected, 1);
  assert.equal(part?.statement.operation, "update");
  const marker = await admin.query(`SELECT run_id, rows_affected FROM cloister_grant_uses WHERE grant_id = $1`, [grantId.toString()]);
  assert.deepEqual(marker.rows.map((r) => [r.run_id, Number(r.rows_affected)]), [[run.receipt.runId, 1]]);

  const second = await g.operate(document, statement);
  assert.equal(second.receipt.use, 2);
  assert.notEqual(second.receipt.runId, run.receipt.runId);
  assert.equal(await balance(1), before1 + 10);
  assert.equal((await listGrantUses(g.net.requester, g.grants, grantId)).length, 2);
});

test("refused when the grant is used up: nothing changes", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance - 1 WHERE id = 2`;
  const { document, grantId } = await g.grant({ dataset, statement, maxUses: 1 });
  await g.operate(document, statement);
  const after1 = await balance(2);
  const error = await refused(g.operate(document, statement), "GRANT_USED_UP");
  assert.match(error.message, /allowed 1 use/);
  assert.equal(await balance(2), after1);
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 1);
});

test("refused without a grant on chain (signed but never created)", { skip }, async () => {
  const statement = `DELETE FROM ${table} WHERE id = 3`;
  const { document } = await g.grant({ dataset, statement, operations: ["delete"], relay: false });
  await refused(g.operate(document, statement), "GRANT_NOT_FOUND");
  assert.equal((await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 3`)).rows[0].n, 1);
});

test("refused once revoked", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 0 WHERE id = 3`;
  const { document, grantId } = await g.grant({ dataset, statement });
  await revokeGrant(g.net.requester, g.grants, grantId);
  await refused(g.operate(document, statement), "GRANT_REVOKED");
  assert.equal(await balance(3), 10);
});

test("refused once the owner marks the grant revoked in the dataset itself, whatever block the node proves", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 1 WHERE id = 4`;
  const { document, grantId } = await g.grant({ dataset, statement, maxUses: 3 });
  await g.operate(document, statement);
  const after1 = await balance(4);
  // Not revoked on chain: as seen by a node replaying a block from before the revocation.
  await markGrantRevoked(dataset, grantId);
  await markGrantRevoked(dataset, grantId); // idempotent
  const error = await refused(g.operate(document, statement), "GRANT_REVOKED");
  assert.match(error.message, /mark in dataset/);
  assert.equal(await balance(4), after1);
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 1);
});

test("with the owner's chain endpoints sealed in the dataset, a node replaying a block from before the revocation is refused", { skip }, async () => {
  const rpc = await startChainRpcServer({ provider: g.net.chain.provider });
  try {
    await admin.query(`INSERT INTO ${table} VALUES (5, 'erin', 5)`);
    const statement = `UPDATE ${table} SET balance = balance + 1 WHERE id = 5`;
    const { enclave, evidenceCid } = g.net.nodes[0]!.enclaveJobs;
    // The node records the chain's answers while the grant is live, the owner revokes, the node replays the old answers.
    const replayOld = async (document: GrantDocument) => {
      const stale = await recordGrantChain(g.net.chain.provider, document, g.net.deployment.registry, enclave.identity.signer);
      await revokeGrant(g.net.requester, g.grants, BigInt(document.grantId));
      const sealed = document.datasets.find((d) => d.enclave.toLowerCase() === enclave.identity.signer.toLowerCase())!;
      return enclave.runJob({ kind: "operate", params: { binding: { chainId: BigInt(document.chainId), grants: document.grants, grantId: BigInt(document.grantId) }, grant: document.grant, dataset: sealed, statement, chain: stale }, evidenceCid: evidenceCid! });
    };
    // Without endpoints of the owner's, the host's block is believed: the stale replay applies (the dataset's mark is the remedy there).
    const plain = await g.grant({ dataset, statement, maxUses: 3 });
    await replayOld(plain.document);
    assert.equal(await balance(5), 6, "the host-chosen block let a revoked grant's use through");

    const withView = await g.grant({ dataset: { ...dataset, chainView: { endpoints: [rpc.url], quorum: 1, finalityDepth: 0 } }, statement, maxUses: 3 });
    const error = await refused(replayOld(withView.document), "GRANT_REVOKED");
    assert.match(error.message, /revoked by its owner at block/);
    assert.equal(await balance(5), 6, "nothing changed");
  } finally {
    await admin.query(`DELETE FROM ${table} WHERE id = 5`);
    await rpc.close();
  }
});

test("refused before its window opens", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 1 WHERE id = 3`;
  const now = await g.chainNow();
  const { document } = await g.grant({ dataset, statement, notBefore: now + 100_000, expiry: now + 200_000 });
  await refused(g.operate(document, statement), "GRANT_NOT_YET_VALID");
  assert.equal(await balance(3), 10);
});

test("refused once expired (the trusted block's time, not the host's clock)", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 2 WHERE id = 3`;
  const now = await g.chainNow();
  const { document } = await g.grant({ dataset, statement, notBefore: now - 10, expiry: now + 30 });
  await g.advance(120);
  await refused(g.operate(document, statement), "GRANT_EXPIRED");
  assert.equal(await balance(3), 10);
});

test("refused once expired by the dataset's own clock, even when the node's block says otherwise", { skip }, async () => {
  // A second role whose now() runs ten days ahead (its schema's now() shadows pg_catalog's on its search path):
  // the database's clock is past the grant's expiry while the chain's is not, as for a node replaying an old block.
  const late = `${role}_late`;
  await admin.query(`CREATE ROLE ${late} LOGIN`);
  try {
    await admin.query(`CREATE SCHEMA ${late} AUTHORIZATION ${late}`);
    await admin.query(`CREATE FUNCTION ${late}.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT pg_catalog.now() + interval '10 days' $$`);
    await admin.query(`ALTER ROLE ${late} SET search_path = ${late}, pg_catalog`);
    await admin.query(`GRANT USAGE ON SCHEMA ${role} TO ${late}`);
    await admin.query(`GRANT ALL ON ${table} TO ${late}`);
    const lateDataset = { ...dataset, connection: { type: "postgres" as const, url: `postgres://${late}@${server.host}:${server.port}/${server.database}` }, table: `${role}.${table}` };
    const statement = `UPDATE ${role}.${table} SET balance = 6 WHERE id = 3`;
    const { document, grantId } = await g.grant({ dataset: lateDataset, statement });
    const error = await refused(g.operate(document, statement), "GRANT_EXPIRED");
    assert.match(error.message, /dataset's own clock/);
    assert.equal(await balance(3), 10);
    const markers = await admin.query(`SELECT count(*)::int AS n FROM ${late}.cloister_grant_uses WHERE grant_id = $1`, [grantId.toString()]);
    assert.equal(markers.rows[0].n, 0, "the run marker was rolled back");
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${late} CASCADE`);
    await admin.query(`DROP OWNED BY ${late}`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${late}`);
  }
});

test("refused for another statement than granted", { skip }, async () => {
  const granted = `UPDATE ${table} SET balance = balance + 1 WHERE id = 2`;
  const { document } = await g.grant({ dataset, statement: granted });
  const error = await refused(g.operate(document, `UPDATE ${table} SET balance = balance + 1000 WHERE id = 2`), "GRANT_STATEMENT_NOT_GRANTED");
  assert.match(error.message, /exact statement/);
});

test("refused for another operation than granted", { skip }, async () => {
  const statement = `DELETE FROM ${table} WHERE id = 2`;
  const { document } = await g.grant({ dataset, statement, operations: ["update"] });
  const error = await refused(g.operate(document, statement), "GRANT_OPERATION_NOT_GRANTED");
  assert.match(error.message, /delete/);
  assert.equal((await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 2`)).rows[0].n, 1);
});

test("refused for another table than the dataset's", { skip }, async () => {
  const statement = `UPDATE cloister_grant_uses SET rows_affected = 0`;
  const { document } = await g.grant({ dataset, statement });
  await refused(g.operate(document, statement), "GRANT_TABLE_NOT_GRANTED");
});

test("refused for another dataset than granted", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 3 WHERE id = 3`;
  const { document, grantId } = await g.grant({ dataset, statement });
  const enclave = g.net.nodes[0]!.enclaveJobs.enclave.identity;
  const other = await sealDataset({ chainId: BigInt(document.chainId), grants: document.grants, grantId }, { ...dataset, name: "another-dataset" }, enclave);
  await refused(g.operate({ ...document, datasets: [other] }, statement), "GRANT_DATASET_NOT_GRANTED");
  assert.equal(await balance(3), 10);
});

test("refused for another operator: the enclave proves its own operator on chain", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 4 WHERE id = 3`;
  // Granted to node 1's operator, sealed to node 0's enclave (whose operator is another).
  const { document } = await g.grant({ dataset, statement, operator: g.operator(1) });
  const error = await refused(g.operate(document, statement, { node: 0 }), "GRANT_WRONG_OPERATOR");
  assert.match(error.message, new RegExp(g.operator(0)));
  assert.equal(await balance(3), 10);
});

test("a host that widens the signed terms is refused", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = 5 WHERE id = 3`;
  const { document } = await g.grant({ dataset, statement });
  const widened = { ...document, grant: { ...document.grant, terms: { ...document.grant.terms, maxUses: 1000 } } };
  await refused(g.operate(widened, statement), "GRANT_SIGNATURE_INVALID");
});

test("exactly once: a use applied but not yet recorded is not applied again, and is recorded once", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 7 WHERE id = 2`;
  const { document, grantId } = await g.grant({ dataset, statement, maxUses: 3 });
  const start = await balance(2);
  const first = await g.operate(document, statement, { record: false });
  assert.equal(await balance(2), start + 7);
  const error = await refused(g.operate(document, statement), "GRANT_USE_ALREADY_APPLIED");
  assert.match(error.message, new RegExp(first.receipt.runId));
  assert.equal(await balance(2), start + 7);
  const { writer } = g.net.nodes[0]!.enclaveJobs;
  await consumeGrantUse(writer, g.grants, { grantId, runId: first.receipt.runId, provenanceDigest: first.provenanceDigest, signature: first.signature });
  await assert.rejects(consumeGrantUse(writer, g.grants, { grantId, runId: first.receipt.runId, provenanceDigest: first.provenanceDigest, signature: first.signature }), /RunAlreadyRecorded|reverted/);
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 1);
  const next = await g.operate(document, statement);
  assert.equal(next.receipt.use, 2);
  assert.equal(await balance(2), start + 14);
});

test("a use applied by a node that died before recording it is recorded from the node's pending outcome, then the grant goes on", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 3 WHERE id = 3`;
  const { document, grantId } = await g.grant({ dataset, statement, maxUses: 2 });
  const pendingDir = await mkdtemp(join(tmpdir(), "cloister-pending-"));
  try {
    const start = await balance(3);
    const first = await g.operate(document, statement, { record: false, pendingDir });
    assert.deepEqual(await readdir(pendingDir), [`${first.receipt.runId}.json`]);
    await refused(g.operate(document, statement), "GRANT_USE_ALREADY_APPLIED");
    const { writer } = g.net.nodes[0]!.enclaveJobs;
    assert.deepEqual(await recordPendingUses(writer, g.grants, pendingDir), [first.receipt.runId]);
    assert.deepEqual(await readdir(pendingDir), []);
    assert.deepEqual(await recordPendingUses(writer, g.grants, pendingDir), [], "nothing left to record");
    const uses = await listGrantUses(g.net.requester, g.grants, grantId);
    assert.deepEqual(uses.map((u) => u.provenanceDigest), [first.provenanceDigest]);
    const second = await g.operate(document, statement, { pendingDir });
    assert.equal(second.receipt.use, 2);
    assert.deepEqual(await readdir(pendingDir), [], "a recorded use leaves nothing pending");
    assert.equal(await balance(3), start + 6);
  } finally {
    await rm(pendingDir, { recursive: true, force: true });
  }
});

test("a granted read: the rows go sealed to the operator's key, once; without a key it is refused", { skip }, async () => {
  const statement = `SELECT holder, balance FROM ${table} WHERE id = 1`;
  const { document, grantId } = await g.grant({ dataset, statement, operations: ["read"], maxUses: 1 });
  await refused(g.operate(document, statement), "OPERATE_RESULT_KEY_MISSING");
  const keys = await generateHpkeKeyPair();
  const run = await g.operate(document, statement, { resultKey: toHex(keys.publicKey) });
  assert.equal(run.receipt.operation, "read");
  assert.equal(run.receipt.rowsAffected, 1);
  const rows = await openGrantRead(run.result!, keys.privateKey, document, run.receipt.runId);
  assert.deepEqual(rows.columns, ["holder", "balance"]);
  assert.equal(rows.rows[0]![0], ROW_CANARY);
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 1);
  await refused(g.operate(document, statement, { resultKey: toHex(keys.publicKey) }), "GRANT_USED_UP");
});

test("no canary from the rows or the database password reaches a host-visible place", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 1 WHERE holder <> 'nobody'`;
  const { document } = await g.grant({ dataset, statement });
  const run = await g.operate(document, statement);
  assert.equal(run.receipt.rowsAffected, 4);
  const frames = framesText(g.frames);
  assert.ok(frames.includes(table), "the frames were recorded (they name the table)");
  for (const canary of [ROW_CANARY, PW_CANARY]) {
    assert.ok(!frames.includes(canary), `${canary} crossed the call gate`);
    assert.deepEqual(await g.filesHolding(canary), [], `${canary} is in the network's data dir`);
    assert.ok(!new TextDecoder("latin1").decode(run.provenance).includes(canary));
  }
});
