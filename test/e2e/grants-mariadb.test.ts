/**
 * Granted manipulations against the machine's real MariaDB through a real
 * embedded network: an allowed use changes the dataset once and is recorded
 * on chain once; refusals change nothing; a canary in the rows and in the
 * database user's password reaches no host-visible place.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { readGrant } from "../../src/chain/actions/read-grant.ts";
import { listGrantUses } from "../../src/chain/actions/read-grant-logs.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import type { GrantedDataset } from "../../src/protocol/operate.ts";
import { my, uniqueName, unreachable } from "../enclave/connectors/servers.ts";
import { framesText, startGrantNetwork, type GrantNetwork } from "./grants-fixture.ts";

const ROW_CANARY = "canary-row-my-5b19e0";
const PW_CANARY = "canary-pw-my-a07c3d";
const down = await unreachable(my.host, my.port);
const skip = down ? `MariaDB unreachable: ${down}; start it (service mariadb start) to run these tests` : false;
const table = uniqueName("cloister_grant_my");
const user = uniqueName("cg").slice(0, 32);

let admin: mysql.Connection;
let g: GrantNetwork;
let dataset: GrantedDataset;

before(async () => {
  if (skip) return;
  admin = await mysql.createConnection({ host: my.host, port: my.port, user: my.user, database: my.database });
  await admin.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, holder VARCHAR(40) NOT NULL, balance INT NOT NULL)`);
  await admin.query(`INSERT INTO ${table} VALUES (1, '${ROW_CANARY}', 100), (2, 'bob', 50), (3, 'carol', 10)`);
  await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${PW_CANARY}'`);
  await admin.query(`CREATE USER '${user}'@'localhost' IDENTIFIED BY '${PW_CANARY}'`);
  for (const host of ["%", "localhost"]) await admin.query(`GRANT ALL ON ${my.database}.* TO '${user}'@'${host}'`);
  g = await startGrantNetwork();
  dataset = {
    name: `crm/${table}`,
    table,
    connection: { type: "mysql", url: `mysql://${user}:${PW_CANARY}@${my.host}:${my.port}/${my.database}` },
    registry: g.net.deployment.registry,
  };
});

after(async () => {
  if (skip) return;
  await g?.close();
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  for (const host of ["%", "localhost"]) await admin.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
  await admin.end();
});

const balance = async (id: number) => Number(((await admin.query(`SELECT balance FROM ${table} WHERE id = ?`, [id]))[0] as { balance: number }[])[0]!.balance);

async function refused(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => assert.fail(`expected a refusal with ${code}, but the operation ran`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof EnclaveError, `expected an EnclaveError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
}

test("MariaDB: allowed once under the grant, recorded once, then refused when used up", { skip }, async () => {
  const statement = `DELETE FROM ${table} WHERE id = 3`;
  const { document, grantId } = await g.grant({ dataset, statement, operations: ["delete"], maxUses: 1 });
  const run = await g.operate(document, statement);
  assert.equal(run.receipt.rowsAffected, 1);
  assert.equal(run.receipt.operation, "delete");
  const [rows] = await admin.query(`SELECT COUNT(*) AS n FROM ${table} WHERE id = 3`);
  assert.equal(Number((rows as { n: number }[])[0]!.n), 0);
  const uses = await listGrantUses(g.net.requester, g.grants, grantId);
  assert.deepEqual(uses.map((u) => [u.runId, u.provenanceDigest]), [[run.receipt.runId, run.provenanceDigest]]);
  await refused(g.operate(document, statement), "GRANT_USED_UP");
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 1);
});

test("MariaDB: another statement and another operation are refused, nothing changes", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 1 WHERE id = 2`;
  const { document } = await g.grant({ dataset, statement });
  await refused(g.operate(document, `UPDATE ${table} SET balance = 0 WHERE id = 2`), "GRANT_STATEMENT_NOT_GRANTED");
  const del = `DELETE FROM ${table} WHERE id = 2`;
  const { document: delDoc } = await g.grant({ dataset, statement: del, operations: ["update", "insert"] });
  await refused(g.operate(delDoc, del), "GRANT_OPERATION_NOT_GRANTED");
  assert.equal(await balance(2), 50);
});

test("MariaDB: a failing statement is rolled back whole, and its error carries no row value", { skip }, async () => {
  // id 1 exists: the duplicate-key message of MariaDB quotes the key value, which must stay in the enclave.
  const statement = `INSERT INTO ${table} (id, holder, balance) VALUES (1, 'dup', 0)`;
  const { document, grantId } = await g.grant({ dataset, statement, operations: ["insert"] });
  const error = await g.operate(document, statement).then(
    () => assert.fail("the duplicate insert ran"),
    (e: unknown) => e as EnclaveError,
  );
  assert.equal(error.code, "OPERATE_STATEMENT_FAILED");
  assert.match(error.message, /ER_DUP_ENTRY/);
  assert.ok(!error.message.includes("'1'"));
  const [markers] = await admin.query(`SELECT COUNT(*) AS n FROM cloister_grant_uses WHERE grant_id = ?`, [grantId.toString()]);
  assert.equal(Number((markers as { n: number }[])[0]!.n), 0, "the run marker was rolled back with the statement");
  assert.equal((await readGrant(g.net.requester, g.grants, grantId)).uses, 0);
});

test("MariaDB: no canary from the rows or the password reaches a host-visible place", { skip }, async () => {
  const statement = `UPDATE ${table} SET balance = balance + 1`;
  const { document } = await g.grant({ dataset, statement });
  const run = await g.operate(document, statement);
  assert.ok(run.receipt.rowsAffected >= 2);
  const frames = framesText(g.frames);
  assert.ok(frames.includes(table));
  for (const canary of [ROW_CANARY, PW_CANARY]) {
    assert.ok(!frames.includes(canary), `${canary} crossed the call gate`);
    assert.deepEqual(await g.filesHolding(canary), [], `${canary} is in the network's data dir`);
  }
});
