/**
 * Three parties whose data lives in different real systems: a retailer's csv file, a bank's PostgreSQL table
 * (its url carries a password), an insurer's MariaDB table and its NATS JetStream stream. The delivered rows
 * are plain DuckDB's answer over the same rows, above the threshold; a canary in the bank's rows and in its
 * database password appears in no host-visible place (every file of the network's data dir: chain journal,
 * IPFS blocks, host logs, sealed enclave state; every call-gate frame; every byte the relays carried between
 * the partners' and the compute enclave; the chain's transactions), and the
 * recipient receives only the aggregate.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { serialize } from "node:v8";
import { DuckDBInstance } from "@duckdb/node-api";
import mysql from "mysql2/promise";
import { connect, type NatsConnection } from "nats";
import pgLib from "pg";
import { my, natsUrl, pg, pgUrl, uniqueName, unreachable } from "../enclave/connectors/servers.ts";
import { created, load, run, startFixture, type CollabFixture } from "./fixture.ts";

const CANARY_ROW = "canary-row-7f3a9c";
const CANARY_PASSWORD = "canary-pw-51d2e8";
const down = (await unreachable(pg.host, pg.port)) ?? (await unreachable(my.host, my.port)) ?? (await unreachable(new URL(natsUrl).hostname, Number(new URL(natsUrl).port || 4222)));
const skip = down ? `a server is down (${down}); start PostgreSQL, MariaDB and nats-server -js (.ci/services) to run this test` : false;

const cards = uniqueName("cr_cards");
const policies = uniqueName("cr_policies");
const stream = uniqueName("CR_VISITS").toUpperCase();

// Customers 1..60; the toys group is bought by 3 customers only.
const purchases: [number, number, string, number][] = [];
for (let c = 1, id = 1; c <= 60; c++) for (let k = 0; k < 3; k++) purchases.push([id++, c, ["books", "garden", "electronics"][(c + k) % 3]!, 10 + ((c * 7 + k * 13) % 90)]);
for (const c of [3, 8, 13]) purchases.push([1000 + c, c, "toys", 50]);
const cardRows = Array.from({ length: 60 }, (_, i) => [i + 1, i % 4 === 0 ? "silver" : "gold", i === 6 ? CANARY_ROW : `holder-${i + 1}`] as const);
const policyRows = Array.from({ length: 60 }, (_, i) => [i + 1, i % 5 !== 0] as const);
const visitRows = Array.from({ length: 60 }, (_, i) => ({ customer_id: i + 1, visits: (i % 3) + 1 }));

const QUERY =
  `SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN ${cards} c ON p.customer_id = c.customer_id ` +
  `JOIN ${policies} i ON i.customer_id = p.customer_id JOIN visits v ON v.customer_id = p.customer_id WHERE c.tier = 'gold' AND i.insured GROUP BY p.category ORDER BY p.category`;

let fx: CollabFixture;
let nc: NatsConnection | undefined;
let admin: pgLib.Client | undefined;
let maria: mysql.Connection | undefined;

before(async () => {
  if (skip) return;
  admin = new pgLib.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE TABLE ${cards} (customer_id bigint, tier text, holder text)`);
  for (const r of cardRows) await admin.query(`INSERT INTO ${cards} VALUES ($1, $2, $3)`, [...r]);
  maria = await mysql.createConnection({ host: my.host, port: my.port, user: my.user, database: my.database });
  await maria.query(`CREATE TABLE ${policies} (customer_id BIGINT, insured BOOLEAN)`);
  await maria.query(`INSERT INTO ${policies} VALUES ${policyRows.map(() => "(?, ?)").join(", ")}`, policyRows.flat());
  nc = await connect({ servers: natsUrl.replace(/^nats:\/\//, "") });
  await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  for (const v of visitRows) await nc.jetstream().publish(`${stream.toLowerCase()}.visit`, new TextEncoder().encode(JSON.stringify(v)));
  fx = await startFixture(["retailer", "bank", "insurer"]);
  await writeFile(join(fx.dir, "purchases.csv"), `purchase_id,customer_id,category,amount\n${purchases.map((r) => r.join(",")).join("\n")}\n`);
});

after(async () => {
  await fx?.close();
  await admin?.query(`DROP TABLE IF EXISTS ${cards}`).catch(() => undefined);
  await admin?.end();
  await maria?.query(`DROP TABLE IF EXISTS ${policies}`).catch(() => undefined);
  await maria?.end();
  if (nc) {
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
});

async function plainExpected() {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  await c.run(`CREATE TABLE purchases (purchase_id BIGINT, customer_id BIGINT, category VARCHAR, amount BIGINT)`);
  await c.run(`INSERT INTO purchases VALUES ${purchases.map((r) => `(${r[0]}, ${r[1]}, '${r[2]}', ${r[3]})`).join(", ")}`);
  await c.run(`CREATE TABLE ${cards} (customer_id BIGINT, tier VARCHAR, holder VARCHAR)`);
  await c.run(`INSERT INTO ${cards} VALUES ${cardRows.map((r) => `(${r[0]}, '${r[1]}', '${r[2]}')`).join(", ")}`);
  await c.run(`CREATE TABLE ${policies} (customer_id BIGINT, insured BOOLEAN)`);
  await c.run(`INSERT INTO ${policies} VALUES ${policyRows.map((r) => `(${r[0]}, ${r[1]})`).join(", ")}`);
  await c.run(`CREATE TABLE visits (customer_id DOUBLE, visits DOUBLE)`);
  await c.run(`INSERT INTO visits VALUES ${visitRows.map((v) => `(${v.customer_id}, ${v.visits})`).join(", ")}`);
  const rows = (await c.runAndReadAll(QUERY)).getRowsJS().map((row) => row.map((v) => (typeof v === "bigint" ? Number(v) : v)));
  c.closeSync();
  db.closeSync();
  return { kept: rows.filter((r) => (r[1] as number) >= 5), small: rows.filter((r) => (r[1] as number) < 5) };
}

async function* files(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

describe("clean room, three parties over PostgreSQL, MariaDB and NATS", { skip }, () => {
  test("the join across four sources runs; only the aggregate reaches the recipient; the canaries are in no host-visible place", async () => {
    const pgWithPassword = pgUrl.replace(/^postgres:\/\/([^@]+)@/, `postgres://$1:${CANARY_PASSWORD}@`);
    const loaded = load(fx, {
      name: "three-way",
      parties: [
        { name: "retailer", datasets: { purchases: { type: "csv", path: "purchases.csv" } } },
        { name: "bank", datasets: { [cards]: { type: "postgres", url: pgWithPassword, table: cards } } },
        { name: "insurer", datasets: { [policies]: { type: "mysql", url: `mysql://${my.user}@${my.host}:${my.port}/${my.database}`, table: policies }, visits: { type: "nats", url: natsUrl, stream } } },
      ],
      compute: "retailer",
      query: QUERY,
      policy: { identity: "customer_id", minGroupSize: 5 },
      recipient: { party: "insurer" },
    });
    const made = await created(fx, loaded);
    const out = await run(fx, made);
    const expected = await plainExpected();
    assert.ok(expected.small.length >= 1);
    assert.deepEqual(out.result!.rows, expected.kept);
    assert.equal(out.result!.suppressed, expected.small.length);
    assert.ok(out.deliveredTo.includes(join("nodes", "2")), "delivered to the insurer's node");

    const canaries = [CANARY_ROW, CANARY_PASSWORD].map((c) => Buffer.from(c));
    const resultText = JSON.stringify(out.result);
    for (const c of canaries) assert.ok(!resultText.includes(c.toString()), "the recipient gets no row value");
    // Every file the network wrote: chain journal, IPFS blocks, host logs, sealed enclave state, the delivered blob.
    let scanned = 0;
    for await (const path of files(fx.c.network.dataDir)) {
      const bytes = await readFile(path);
      scanned++;
      for (const c of canaries) assert.equal(bytes.indexOf(c), -1, `${c} found in ${path}`);
    }
    assert.ok(scanned > 10, `scanned ${scanned} files`);
    // Every call-gate frame the hosts sent or received (control: the search finds a canary where one is).
    assert.notEqual(serialize({ params: { url: pgWithPassword } }).indexOf(canaries[1]!), -1);
    assert.ok(fx.frames.length > 0);
    for (const frame of fx.frames) {
      const bytes = serialize(frame);
      for (const c of canaries) assert.equal(bytes.indexOf(c), -1, "a gate frame carries a canary");
    }
    // The bytes the relays carried: the partners' rows went to the compute enclave over them, inside TLS.
    const relayed = fx.carried.filter((c) => c.destination.includes("->"));
    assert.ok(relayed.length > 0, "the partners' rows crossed the relays (inbound streams)");
    const all = Buffer.concat(fx.carried.map((c) => c.bytes));
    for (const c of canaries) assert.equal(all.indexOf(c), -1, "the relays carried a canary in the clear");
    // The chain: every transaction's calldata and every log (the terms name the url without its password).
    const chain = fx.c.network.chain;
    const head = Number(await chain.provider.request({ method: "eth_blockNumber" }));
    for (let n = 0; n <= head; n++) {
      const block = (await chain.provider.request({ method: "eth_getBlockByNumber", params: [`0x${n.toString(16)}`, true] })) as { transactions: { input: string }[] };
      for (const tx of block.transactions) for (const c of canaries) assert.ok(!Buffer.from(tx.input.slice(2), "hex").includes(c), `block ${n} calldata carries a canary`);
    }
  });
});
