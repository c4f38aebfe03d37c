import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { collect, ConnectorError, datasetDigest, openDataset, writeRows, type Column, type Row } from "../../../src/enclave/connectors/index.ts";
import { closedPort, my, mysqlUrl, pg, pgUrl, uniqueName, unreachable } from "./servers.ts";

const CANARY = "canary-write-pw-2d7e11";
const servers = [
  { type: "postgres" as const, url: pgUrl, down: await unreachable(pg.host, pg.port), start: "service postgresql start" },
  { type: "mysql" as const, url: mysqlUrl, down: await unreachable(my.host, my.port), start: "service mariadb start" },
];
const columns: Column[] = [
  { name: "customer", type: "text" },
  { name: "orders", type: "integer" },
  { name: "total", type: "float" },
];
const rowsA: Row[] = [["alice", 2n, 17.75], ["bob", 1n, 20]];
const rowsB: Row[] = [["alice", 3n, 30], ["carol", 1n, 5.5]];
const tables: { type: "postgres" | "mysql"; url: string; table: string }[] = [];
const read = async (type: "postgres" | "mysql", url: string, table: string) => collect(await openDataset({ type, url, query: `SELECT * FROM ${table} ORDER BY customer` }));

test.after(async () => {
  const { default: pgLib } = await import("pg");
  const { default: mysql } = await import("mysql2/promise");
  for (const { type, table } of tables) {
    if (type === "postgres") {
      const c = new pgLib.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    } else {
      const c = await mysql.createConnection({ host: my.host, port: my.port, user: my.user, database: my.database });
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
  }
});

for (const { type, url, down, start } of servers) {
  const skip = down ? `${type} unreachable: ${down}; start it (${start}) to run these tests` : false;

  test(`${type}: upsert creates the table with its key, and a write done twice leaves each row once`, { skip }, async () => {
    const table = uniqueName(`cloister_w_${type}`);
    tables.push({ type, url, table });
    const dest = { type, url, table, mode: "upsert" as const, key: ["customer"] };
    const first = await writeRows(dest, columns, [rowsA]);
    assert.deepEqual([first.rowCount, first.created], [2, true]);
    assert.equal(first.digest, datasetDigest(columns, rowsA));
    await writeRows(dest, columns, [rowsB]);
    const again = await writeRows(dest, columns, [rowsB]);
    assert.equal(again.created, false);
    const back = await read(type, url, table);
    assert.deepEqual(back.rows, [["alice", 3n, 30], ["bob", 1n, 20], ["carol", 1n, 5.5]]);
  });

  test(`${type}: append adds, replace makes the table exactly the rows written`, { skip }, async () => {
    const table = uniqueName(`cloister_w_${type}`);
    tables.push({ type, url, table });
    await writeRows({ type, url, table, mode: "append" }, columns, [rowsA]);
    await writeRows({ type, url, table, mode: "append" }, columns, (async function* () { yield rowsA; })());
    assert.equal((await read(type, url, table)).rowCount, 4);
    const replaced = await writeRows({ type, url, table, mode: "replace" }, columns, [rowsB]);
    const back = await read(type, url, table);
    assert.deepEqual(back.rows, rowsB);
    assert.equal(back.digest, replaced.digest, "what the destination holds is what the write's digest names");
  });

  test(`${type}: a failed write leaves the table as it was, and upsert without a unique key is refused`, { skip }, async () => {
    const table = uniqueName(`cloister_w_${type}`);
    tables.push({ type, url, table });
    await writeRows({ type, url, table, mode: "append" }, columns, [rowsA]);
    const bad = (async function* () {
      yield rowsB;
      yield [["dave", 1n]] as Row[];
    })();
    await assert.rejects(writeRows({ type, url, table, mode: "replace" }, columns, bad), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_ROW");
    assert.deepEqual((await read(type, url, table)).rows, rowsA);
    await assert.rejects(writeRows({ type, url, table, mode: "upsert", key: ["customer"] }, columns, [rowsB]), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_DESTINATION" && /unique index on exactly \(customer\)/.test(e.message));
    await assert.rejects(writeRows({ type, url, table, mode: "upsert", key: ["id"] }, columns, [rowsB]), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_DESCRIPTOR" && /"id"/.test(e.message));
    await assert.rejects(writeRows({ type, url, table, mode: "upsert" }, columns, []), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_DESCRIPTOR" && /key/.test(e.message));
  });
}

test("a source read from postgres writes to MariaDB and reads back with the same digest", { skip: servers.find((s) => s.down)?.down ?? false }, async () => {
  const pgTable = uniqueName("cloister_w_src");
  tables.push({ type: "postgres", url: pgUrl, table: pgTable });
  await writeRows({ type: "postgres", url: pgUrl, table: pgTable, mode: "append" }, columns, [rowsA, rowsB.slice(1)]);
  const source = await openDataset({ type: "postgres", url: pgUrl, query: `SELECT * FROM ${pgTable} ORDER BY customer` });
  const myTable = uniqueName("cloister_w_dst");
  tables.push({ type: "mysql", url: mysqlUrl, table: myTable });
  const written = await writeRows({ type: "mysql", url: mysqlUrl, table: myTable, mode: "replace" }, source.columns, source);
  assert.equal(written.rowCount, 3);
  assert.equal(written.digest, source.summary().digest);
  assert.equal((await read("mysql", mysqlUrl, myTable)).digest, written.digest);
});

test("an unreachable destination is typed and never shows the password", async () => {
  const port = await closedPort();
  for (const type of ["postgres", "mysql"] as const) {
    const url = `${type}://u:${CANARY}@127.0.0.1:${port}/test`;
    const error = await writeRows({ type, url, table: "t", mode: "append" }, columns, [rowsA]).then(() => assert.fail("expected a refusal"), (e: unknown) => e);
    assert.ok(error instanceof ConnectorError);
    assert.equal(error.code, "CONNECTOR_UNREACHABLE");
    for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 })]) assert.ok(!text.includes(CANARY), text);
  }
});
