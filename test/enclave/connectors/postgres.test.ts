import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import pgLib from "pg";
import { collect, ConnectorError, datasetDigest, openDataset } from "../../../src/enclave/connectors/index.ts";
import { closedPort, pg, pgUrl, uniqueName, unreachable, drain } from "./servers.ts";

const CANARY = "canary-pg-pw-51c0e2";
const down = await unreachable(pg.host, pg.port);
const skip = down ? `PostgreSQL unreachable: ${down}; start it (service postgresql start) to run these tests` : false;
const table = uniqueName("cloister_conn_pg");

let admin: pgLib.Client | undefined;
test.before(async () => {
  if (skip) return;
  admin = new pgLib.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, customer text, amount numeric(10,2), score double precision, ok boolean, at timestamptz, day date, doc jsonb, raw bytea, small int)`);
  await admin.query(`INSERT INTO ${table} SELECT i, 'c' || (i % 3), i * 1.25, i / 4.0, i % 2 = 0, '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 hour', '2026-01-01'::date + i, jsonb_build_object('i', i), decode(lpad(to_hex(i), 4, '0'), 'hex'), i FROM generate_series(1, 25) i`);
  await admin.query(`INSERT INTO ${table} (id, customer) VALUES (26, NULL)`);
});
test.after(async () => {
  if (!admin) return;
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.end();
});

test("postgres: a table streams typed rows in batches with count and digest", { skip }, async () => {
  const reader = await openDataset({ type: "postgres", url: pgUrl, table }, { batchSize: 10 });
  assert.deepEqual(reader.columns.map((c) => [c.name, c.type]), [
    ["id", "integer"], ["customer", "text"], ["amount", "decimal"], ["score", "float"], ["ok", "boolean"],
    ["at", "timestamp"], ["day", "date"], ["doc", "json"], ["raw", "bytes"], ["small", "integer"],
  ]);
  const { rows, sizes } = await drain(reader);
  assert.deepEqual(sizes, [10, 10, 6]);
  const summary = reader.summary();
  assert.equal(summary.rowCount, 26);
  assert.equal(summary.digest, datasetDigest(summary.columns, rows));
  const row3 = rows.find((r) => r[0] === 3n)!;
  assert.deepEqual(row3.slice(0, 5), [3n, "c0", "3.75", 0.75, false]);
  assert.equal(row3[6], "2026-01-04");
  assert.equal(row3[7], '{"i": 3}');
  assert.deepEqual(row3[8], new Uint8Array([0x00, 0x03]));
  assert.equal(row3[9], 3n);
  assert.deepEqual(rows.find((r) => r[0] === 26n)!.slice(1), [null, null, null, null, null, null, null, null, null]);
});

test("postgres: a query source, and incremental reads past a cursor", { skip }, async () => {
  const query = `SELECT id, customer FROM ${table} WHERE customer = 'c1'`;
  const all = await collect(await openDataset({ type: "postgres", url: pgUrl, query, cursor: "id" }));
  assert.deepEqual(all.rows.map((r) => r[0]), [1n, 4n, 7n, 10n, 13n, 16n, 19n, 22n, 25n]);
  assert.equal(all.cursor, "25");

  await admin!.query(`INSERT INTO ${table} (id, customer) VALUES (27, 'c1'), (28, 'c2'), (29, 'c1')`);
  const next = await collect(await openDataset({ type: "postgres", url: pgUrl, query, cursor: "id" }, { after: all.cursor! }));
  assert.deepEqual(next.rows, [[27n, "c1"], [29n, "c1"]]);
  assert.equal(next.cursor, "29");
  const none = await collect(await openDataset({ type: "postgres", url: pgUrl, query, cursor: "id" }, { after: next.cursor! }));
  assert.equal(none.rowCount, 0);
  assert.equal(none.cursor, "29");
});

test("postgres: unknown table, missing cursor column and a bad cursor value are typed", { skip }, async () => {
  await assert.rejects(openDataset({ type: "postgres", url: pgUrl, table: `${table}_nope` }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_UNKNOWN_TABLE" && e.message.includes(`${table}_nope`));
  await assert.rejects(openDataset({ type: "postgres", url: pgUrl, query: `SELECT * FROM ${table}_gone` }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_UNKNOWN_TABLE" && /query names a table/.test(e.message) && e.message.includes(`${table}_gone`));
  await assert.rejects(openDataset({ type: "postgres", url: pgUrl, query: "SELEC 1" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_QUERY_FAILED" && /syntax error/.test(e.message));
  await assert.rejects(openDataset({ type: "postgres", url: pgUrl, table, cursor: "updated_at" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_CURSOR_COLUMN_MISSING" && /id, customer, amount/.test(e.message));
  await assert.rejects(openDataset({ type: "postgres", url: pgUrl, table, cursor: "id" }, { after: "x' OR '1'='1" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_CURSOR");
});

test("postgres: an unreachable server is typed and never shows the url's password", async () => {
  const port = await closedPort();
  const url = `postgres://alice:${CANARY}@127.0.0.1:${port}/test`;
  const error = await openDataset({ type: "postgres", url, table: "t" }).then(() => assert.fail("expected a refusal"), (e: unknown) => e);
  assert.ok(error instanceof ConnectorError);
  assert.equal(error.code, "CONNECTOR_UNREACHABLE");
  assert.match(error.message, new RegExp(`alice:\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
  for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 }), String(error.stack), String((error.cause as Error).stack)]) assert.ok(!text.includes(CANARY), text);
});
