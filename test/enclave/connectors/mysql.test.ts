import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import mysql from "mysql2/promise";
import { collect, ConnectorError, datasetDigest, openDataset } from "../../../src/enclave/connectors/index.ts";
import { closedPort, my, mysqlUrl, uniqueName, unreachable, drain } from "./servers.ts";

const CANARY = "canary-my-pw-9be41d";
const down = await unreachable(my.host, my.port);
const skip = down ? `MariaDB/MySQL unreachable: ${down}; start it (service mariadb start) to run these tests` : false;
const table = uniqueName("cloister_conn_my");

let admin: mysql.Connection | undefined;
test.before(async () => {
  if (skip) return;
  admin = await mysql.createConnection({ host: my.host, port: my.port, user: my.user, database: my.database });
  await admin.query(`CREATE TABLE ${table} (id BIGINT PRIMARY KEY, customer VARCHAR(20), amount DECIMAL(10,2), score DOUBLE, ok BOOLEAN, at DATETIME, day DATE, raw VARBINARY(8), big BIGINT UNSIGNED)`);
  const rows = Array.from({ length: 25 }, (_, k) => {
    const i = k + 1;
    return [i, `c${i % 3}`, (i * 1.25).toFixed(2), i / 4, i % 2 === 0, `2026-01-01 ${String(i % 24).padStart(2, "0")}:00:00`, `2026-01-${String(i).padStart(2, "0")}`, Buffer.from([0, i]), "18446744073709551615"];
  });
  await admin.query(`INSERT INTO ${table} VALUES ?`, [rows]);
  await admin.query(`INSERT INTO ${table} (id) VALUES (26)`);
});
test.after(async () => {
  if (!admin) return;
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

test("mysql: a table streams typed rows in batches with count and digest", { skip }, async () => {
  const reader = await openDataset({ type: "mysql", url: mysqlUrl, table }, { batchSize: 10 });
  assert.deepEqual(reader.columns.map((c) => [c.name, c.type]), [
    ["id", "integer"], ["customer", "text"], ["amount", "decimal"], ["score", "float"], ["ok", "boolean"],
    ["at", "timestamp"], ["day", "date"], ["raw", "bytes"], ["big", "integer"],
  ]);
  const { rows, sizes } = await drain(reader);
  assert.deepEqual(sizes, [10, 10, 6]);
  const summary = reader.summary();
  assert.equal(summary.rowCount, 26);
  assert.equal(summary.digest, datasetDigest(summary.columns, rows));
  const row3 = rows.find((r) => r[0] === 3n)!;
  assert.deepEqual(row3, [3n, "c0", "3.75", 0.75, false, "2026-01-01 03:00:00", "2026-01-03", new Uint8Array([0, 3]), 18446744073709551615n]);
  assert.deepEqual(rows.find((r) => r[0] === 26n)!.slice(1), [null, null, null, null, null, null, null, null]);
});

test("mysql: a query source, and incremental reads past a cursor", { skip }, async () => {
  const query = `SELECT id, customer FROM ${table} WHERE customer = 'c1'`;
  const all = await collect(await openDataset({ type: "mysql", url: mysqlUrl, query, cursor: "id" }));
  assert.deepEqual(all.rows.map((r) => r[0]), [1n, 4n, 7n, 10n, 13n, 16n, 19n, 22n, 25n]);
  assert.equal(all.cursor, "25");

  await admin!.query(`INSERT INTO ${table} (id, customer) VALUES (27, 'c1'), (28, 'c2'), (29, 'c1')`);
  const next = await collect(await openDataset({ type: "mysql", url: mysqlUrl, query, cursor: "id" }, { after: all.cursor! }));
  assert.deepEqual(next.rows, [[27n, "c1"], [29n, "c1"]]);
  assert.equal(next.cursor, "29");
});

test("mysql: unknown table and missing cursor column are typed; the cursor value is escaped", { skip }, async () => {
  await assert.rejects(openDataset({ type: "mysql", url: mysqlUrl, table: `${table}_nope` }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_UNKNOWN_TABLE" && e.message.includes(`${table}_nope`));
  await assert.rejects(openDataset({ type: "mysql", url: mysqlUrl, table, cursor: "updated_at" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_CURSOR_COLUMN_MISSING" && /id, customer, amount/.test(e.message));
  const injected = await collect(await openDataset({ type: "mysql", url: mysqlUrl, table, cursor: "id" }, { after: "99' OR '1'='1" }));
  assert.equal(injected.rowCount, 0, "the cursor value is one escaped literal, not SQL");
});

test("mysql: refused credentials are typed and never show the password", { skip }, async () => {
  const url = `mysql://${my.user}:${CANARY}@${my.host}:${my.port}/${my.database}`;
  const error = await openDataset({ type: "mysql", url, table }).then(() => assert.fail("expected a refusal (the test user has no password)"), (e: unknown) => e);
  assert.ok(error instanceof ConnectorError);
  assert.equal(error.code, "CONNECTOR_AUTH_FAILED");
  for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 }), String((error.cause as Error).stack)]) assert.ok(!text.includes(CANARY), text);
});

test("mysql: an unreachable server is typed and never shows the password", async () => {
  const port = await closedPort();
  const error = await openDataset({ type: "mysql", url: `mysql://root:${CANARY}@127.0.0.1:${port}/test`, table: "t" }).then(() => assert.fail("expected a refusal"), (e: unknown) => e);
  assert.ok(error instanceof ConnectorError);
  assert.equal(error.code, "CONNECTOR_UNREACHABLE");
  for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 })]) assert.ok(!text.includes(CANARY), text);
});
