/**
 * A granted manipulation over TLS terminated in the enclave: a throwaway PostgreSQL that accepts TLS only
 * (test/enclave/net/postgres-instance.ts), the dataset's certificate pinned by the owner, the bytes carried
 * by the node's relay. Neither the rows' canary nor the password crosses the host in the clear; a wrong pin
 * stops the run before any credential leaves the enclave, and changes nothing.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pgLib from "pg";
import { listGrantUses } from "../../src/chain/actions/read-grant-logs.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { certificateSha256 } from "../../src/enclave/net/connect.ts";
import type { CarriedBytes } from "../../src/host/net-relay.ts";
import type { GrantedDataset } from "../../src/protocol/operate.ts";
import { postgresRunner, startPostgres, type PostgresInstance } from "../enclave/net/postgres-instance.ts";
import { framesText, startGrantNetwork, type GrantNetwork } from "./grants-fixture.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;
const canary = `CANARY-grant-tls-${randomBytes(6).toString("hex")}`;
const carried: CarriedBytes[] = [];
let pg: PostgresInstance;
let g: GrantNetwork;
let dataset: GrantedDataset;

const admin = () => new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });

before(async () => {
  if ("skip" in runner) return;
  pg = await startPostgres(runner);
  const c = admin();
  await c.connect();
  await c.query("CREATE TABLE accounts (id int PRIMARY KEY, holder text, balance int)");
  await c.query("INSERT INTO accounts VALUES (1, $1, 100), (2, 'bob', 50)", [canary]);
  await c.end();
  g = await startGrantNetwork({ netRelay: { onCarried: (_node, c) => carried.push(c) } });
  const url = `postgres://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`;
  dataset = { name: "tls-ledger", table: "accounts", connection: { type: "postgres", url, pin: certificateSha256(pg.certPem) }, registry: g.net.deployment.registry };
});

after(async () => {
  await g?.close();
  pg?.stop();
});

const balance = async (id: number) => {
  const c = admin();
  await c.connect();
  try {
    return Number((await c.query("SELECT balance FROM accounts WHERE id = $1", [id])).rows[0].balance);
  } finally {
    await c.end();
  }
};

const carriedText = () => carried.map((c) => Buffer.from(c.bytes).toString("latin1")).join("");

test("over pinned TLS through the relay: the use runs once and is recorded; no canary or password crosses the host in the clear", { skip }, async () => {
  const statement = "UPDATE accounts SET balance = balance + 1 WHERE holder <> 'nobody'";
  const { document, grantId } = await g.grant({ dataset, statement });
  const before1 = await balance(1);
  const run = await g.operate(document, statement);
  assert.equal(run.receipt.rowsAffected, 2);
  assert.equal(await balance(1), before1 + 1);
  assert.equal((await listGrantUses(g.net.requester, g.grants, grantId)).length, 1);
  assert.ok(carried.length > 0, "the relay carried the connection");
  const text = carriedText();
  const frames = framesText(g.frames);
  for (const secret of [canary, pg.password, "UPDATE accounts"]) {
    assert.ok(!text.includes(secret), `${secret} crossed the relay in the clear`);
  }
  for (const secret of [canary, pg.password]) assert.ok(!frames.includes(secret), `${secret} is in a call-gate frame`);
});

test("a wrong pin stops the run before the password leaves the enclave, and nothing changes", { skip }, async () => {
  const statement = "UPDATE accounts SET balance = 0 WHERE id = 2";
  const wrong = { ...dataset, connection: { ...dataset.connection, pin: "00".repeat(32) } } as GrantedDataset;
  const { document } = await g.grant({ dataset: wrong, statement });
  const from = carried.length;
  const bob = await balance(2);
  const error = await g.operate(document, statement).then(
    () => assert.fail("the run went ahead with a wrong pin"),
    (e: unknown) => e as EnclaveError,
  );
  assert.ok(error instanceof EnclaveError);
  assert.equal(error.code, "OPERATE_DATASET_UNREACHABLE", error.message);
  assert.match(error.message, /NET_PIN_MISMATCH/);
  assert.equal(await balance(2), bob);
  const text = carried.slice(from).map((c) => Buffer.from(c.bytes).toString("latin1")).join("");
  assert.ok(!text.includes(pg.password));
});
