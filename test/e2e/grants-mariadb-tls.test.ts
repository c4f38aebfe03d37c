/**
 * A granted manipulation of a MariaDB dataset over TLS terminated in the enclave: a throwaway MariaDB that
 * accepts TLS only (test/enclave/net/mariadb-instance.ts), its certificate pinned in the sealed dataset, the
 * bytes carried by the node's relay. The use runs once with no canary, user or password in the clear; a wrong
 * pin stops the run before any credential leaves the enclave, and changes nothing.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { listGrantUses } from "../../src/chain/actions/read-grant-logs.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { certificateSha256 } from "../../src/enclave/net/connect.ts";
import type { CarriedBytes } from "../../src/host/net-relay.ts";
import type { GrantedDataset } from "../../src/protocol/operate.ts";
import { mariadbSkip, startMariadb, type MariadbInstance } from "../enclave/net/mariadb-instance.ts";
import { startGrantNetwork, type GrantNetwork } from "./grants-fixture.ts";

const skip = mariadbSkip();
const canary = `CANARY-grant-my-${randomBytes(6).toString("hex")}`;
const carried: CarriedBytes[] = [];
let db: MariadbInstance;
let g: GrantNetwork;
let dataset: GrantedDataset;

before(async () => {
  if (skip) return;
  db = await startMariadb({ tls: true });
  db.admin(`CREATE TABLE ${db.database}.accounts (id INT PRIMARY KEY, holder TEXT, balance INT); INSERT INTO ${db.database}.accounts VALUES (1, '${canary}', 100), (2, 'bob', 50)`);
  g = await startGrantNetwork({ netRelay: { onCarried: (_node, c) => carried.push(c) } });
  const url = `mysql://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
  dataset = { name: "tls-shop", table: "accounts", connection: { type: "mysql", url, pin: certificateSha256(db.certPem!) }, registry: g.net.deployment.registry };
});

after(async () => {
  await g?.close();
  await db?.stop();
});

const balances = () => db.admin(`SELECT GROUP_CONCAT(balance ORDER BY id) FROM ${db.database}.accounts`).trim();
const carriedSince = (from: number) => carried.slice(from).map((c) => Buffer.from(c.bytes).toString("latin1")).join("");

test("over pinned TLS through the relay: the use runs once and is recorded; no canary, user or password crosses the host in the clear", { skip }, async () => {
  const statement = "UPDATE accounts SET balance = balance + 1 WHERE holder <> 'nobody'";
  const { document, grantId } = await g.grant({ dataset, statement });
  const run = await g.operate(document, statement);
  assert.equal(run.receipt.rowsAffected, 2);
  assert.equal(balances(), "101,51");
  assert.equal((await listGrantUses(g.net.requester, g.grants, grantId)).length, 1);
  const text = carriedSince(0);
  assert.ok(text.length > 0, "the relay carried the connection");
  for (const secret of [canary, db.user, db.password, "UPDATE accounts"]) assert.ok(!text.includes(secret), `${secret} crossed the relay in the clear`);
});

test("a wrong pin stops the run before the credentials leave the enclave, and nothing changes", { skip }, async () => {
  const statement = "UPDATE accounts SET balance = 0 WHERE id = 2";
  const wrong = { ...dataset, connection: { ...dataset.connection, pin: "00".repeat(32) } } as GrantedDataset;
  const { document } = await g.grant({ dataset: wrong, statement });
  const from = carried.length;
  const before = balances();
  await assert.rejects(g.operate(document, statement), (e: unknown) => {
    assert.ok(e instanceof EnclaveError, String(e));
    assert.equal(e.code, "OPERATE_DATASET_UNREACHABLE", e.message);
    assert.match(e.message, /NET_PIN_MISMATCH/);
    return true;
  });
  assert.equal(balances(), before);
  for (const secret of [db.user, db.password]) assert.ok(!carriedSince(from).includes(secret));
});
