/**
 * Pipelines against the machine's real PostgreSQL and MariaDB, on an embedded
 * network of two nodes: exact counts, incremental runs, the run marker under
 * a replayed cursor and under a failover, and canaries (a source row's value
 * and the database password) in no host-visible place.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pgLib from "pg";
import mysql from "mysql2/promise";
import { readPipeline, readPipelineRuns } from "../../src/chain/actions/read-pipeline.ts";
import { anchorPipelineRun } from "../../src/chain/actions/anchor-pipeline-run.ts";
import { pipelinePart, statementOfSignedEnvelope } from "../../src/protocol/provenance.ts";
import { rawCidOfDigest } from "../../src/storage/raw-cid.ts";
import type { PipelineSpec } from "../../src/protocol/pipeline-package.ts";
import { my, mysqlUrl, pg, uniqueName, unreachable } from "../enclave/connectors/servers.ts";
import { startPipelineNet, type PipelineNet } from "./pipeline-fixture.ts";

const pgDown = await unreachable(pg.host, pg.port);
const myDown = await unreachable(my.host, my.port);
const skip = pgDown || myDown ? `PostgreSQL or MariaDB unreachable (${pgDown ?? myDown}); start them to run these tests` : false;

const rowCanary = `row-canary-${randomBytes(8).toString("hex")}`;
const passwordCanary = `pw${randomBytes(10).toString("hex")}`;
const src = uniqueName("pl_src");
const dst = uniqueName("pl_dst");
const mySrc = uniqueName("pl_mysrc");
const myDst = uniqueName("pl_mydst");

let net: PipelineNet | undefined;
let pgc: pgLib.Client | undefined;
let myc: mysql.Connection | undefined;

test.before(async () => {
  if (skip) return;
  pgc = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, database: pg.database });
  await pgc.connect();
  await pgc.query(`CREATE TABLE ${src} (id BIGINT PRIMARY KEY, customer TEXT, amount NUMERIC(10,2), note TEXT)`);
  await insertPg(1, 20);
  myc = await mysql.createConnection({ host: my.host, port: my.port, user: my.user, database: my.database });
  await myc.query(`CREATE TABLE ${mySrc} (id BIGINT PRIMARY KEY, customer VARCHAR(20), amount DECIMAL(10,2))`);
  await myc.query(`INSERT INTO ${mySrc} VALUES ?`, [Array.from({ length: 12 }, (_, k) => [k + 1, `c${k % 4}`, ((k + 1) * 1.5).toFixed(2)])]);
  net = await startPipelineNet(2);
});

test.after(async () => {
  await net?.close();
  await pgc?.query(`DROP TABLE IF EXISTS ${src}, ${dst}`).catch(() => undefined);
  await pgc?.end();
  await myc?.query(`DROP TABLE IF EXISTS ${mySrc}, ${myDst}`).catch(() => undefined);
  await myc?.end();
});

async function insertPg(from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await pgc!.query(`INSERT INTO ${src} VALUES ($1, $2, $3, $4)`, [i, `c${i % 3}`, (i * 1.25).toFixed(2), i === 7 ? rowCanary : `note ${i}`]);
}

const pgSpec = (): PipelineSpec => ({
  name: "pg-to-pg",
  // trust auth ignores the password; it stands for a real one that must stay inside the enclave.
  source: { type: "postgres", url: `postgres://${pg.user}:${passwordCanary}@${pg.host}:${pg.port}/${pg.database}`, table: src, cursor: "id" },
  transform: { kind: "sql", sql: "SELECT id, customer, amount * 2 AS doubled, note FROM source" },
  destination: { type: "postgres", url: `postgres://${pg.user}:${passwordCanary}@${pg.host}:${pg.port}/${pg.database}`, table: dst, mode: "append" },
  schedule: null,
});

async function dstIds(): Promise<number[]> {
  return (await pgc!.query(`SELECT id FROM ${dst} ORDER BY id`)).rows.map((r: { id: string }) => Number(r.id));
}

test("postgres → SQL → postgres: exact counts, incremental runs, a replayed cursor and a failover load each row once, canaries stay inside", { skip }, async () => {
  const { network } = net!;
  const contract = network.deployment.pipelines!;
  const id = await net!.create(pgSpec());

  const first = await network.nodes[0]!.runPipeline(id);
  assert.deepEqual([first.run, first.read, first.written, first.resumed], [1, 20, 20, false]);
  assert.deepEqual(await dstIds(), Array.from({ length: 20 }, (_, k) => k + 1));
  const doubled = (await pgc!.query(`SELECT doubled::text AS d FROM ${dst} WHERE id = 4`)).rows[0].d;
  assert.equal(Number(doubled), 10);

  await insertPg(21, 25);
  const second = await network.nodes[0]!.runPipeline(id);
  assert.deepEqual([second.run, second.read, second.written], [2, 5, 5], "the second run reads only the 5 new rows");
  assert.equal(second.cursorBefore, first.cursorAfter);
  const third = await network.nodes[1]!.runPipeline(id);
  assert.deepEqual([third.run, third.read, third.written], [3, 0, 0], "nothing new: nothing read");
  assert.deepEqual(await dstIds(), Array.from({ length: 25 }, (_, k) => k + 1));

  // A host replays the first run's chain state and cursor (rollback): the run id is the first run's, the
  // destination's marker says it was loaded, so nothing is written; the chain refuses its anchor.
  const state = await readPipeline(network.requester, contract, id);
  const outcome = await network.enclaves[0]!.runJob({
    kind: "pipeline",
    params: { binding: { chainId: BigInt(network.deployment.chainId), contract, pipelineId: id }, chain: { pipelineDigest: state.pipelineDigest, cursor: first.cursorBefore }, package: await network.store.get(rawCidOfDigest(state.pipelineDigest)), cursorState: null },
    evidenceCid: "replay",
  });
  const replayed = pipelinePart(statementOfSignedEnvelope(outcome.provenance.bytes))!;
  assert.equal(replayed.resumed, true);
  assert.equal(replayed.runId, first.runId);
  assert.equal(replayed.cursorAfter, first.cursorAfter, "the marker's sealed cursor: the first run's");
  assert.deepEqual(await dstIds(), Array.from({ length: 25 }, (_, k) => k + 1), "the replay wrote nothing");
  await assert.rejects(
    anchorPipelineRun(network.requester, contract, id, { runId: replayed.runId, cursorBefore: replayed.cursorBefore, cursorAfter: replayed.cursorAfter, recordsRead: 20n, recordsWritten: 20n, provenanceDigest: outcome.provenance.digest }, outcome.anchor.signature),
    /RunAlreadyAnchored|CursorMismatch/,
  );

  // A node loads and dies before anchoring; another candidate runs the same run: resumed from the marker.
  await insertPg(26, 28);
  await assert.rejects(network.nodes[0]!.runPipeline(id, { beforeAnchor: () => Promise.reject(new Error("node killed")) }), /node killed/);
  assert.deepEqual(await dstIds(), Array.from({ length: 28 }, (_, k) => k + 1), "the dead node's load committed");
  assert.equal((await readPipeline(network.requester, contract, id)).runs, 3, "but its run was not anchored");
  const failover = await network.nodes[1]!.runPipeline(id);
  assert.deepEqual([failover.run, failover.read, failover.written, failover.resumed], [4, 3, 3, true]);
  assert.equal(failover.enclave, network.nodes[1]!.signer);
  assert.deepEqual(await dstIds(), Array.from({ length: 28 }, (_, k) => k + 1), "each row once");
  const runs = await readPipelineRuns(network.requester, contract, id);
  assert.deepEqual(runs.map((r) => r.run), [1, 2, 3, 4], "each run anchored once");
  assert.equal(new Set(runs.map((r) => r.runId)).size, 4);

  // The canaries are in the destination (the pipeline's output) and nowhere the hosts can see.
  assert.equal((await pgc!.query(`SELECT count(*)::int AS n FROM ${dst} WHERE note = $1`, [rowCanary])).rows[0].n, 1);
  assert.match((await net!.hostSees(first.provenanceCid)) ?? "", /./, "control: what the host does see is found");
  assert.equal(await net!.hostSees(rowCanary), undefined, "the row canary is host-visible");
  assert.equal(await net!.hostSees(passwordCanary), undefined, "the password is host-visible");
  assert.equal(await net!.hostSees(src), undefined, "the source table name is host-visible");
});

test("mariadb → SQL aggregate → mariadb upsert: exact counts, an incremental run updates the totals of the new rows' keys", { skip }, async () => {
  const { network } = net!;
  const id = await net!.create({
    name: "my-totals",
    source: { type: "mysql", url: mysqlUrl, table: mySrc, cursor: "id" },
    transform: { kind: "sql", sql: "SELECT customer, COUNT(*) AS orders, SUM(amount) AS total FROM source GROUP BY customer ORDER BY customer" },
    destination: { type: "mysql", url: mysqlUrl, table: myDst, mode: "upsert", key: ["customer"] },
    schedule: "*/5 * * * *",
  });
  const first = await network.nodes[0]!.runPipeline(id);
  assert.deepEqual([first.read, first.written], [12, 4]);
  const [rows] = await myc!.query(`SELECT customer, orders, total FROM ${myDst} ORDER BY customer`);
  assert.deepEqual((rows as { customer: string; orders: number | string; total: string }[]).map((r) => [r.customer, Number(r.orders), Number(r.total)]), [
    ["c0", 3, 1.5 + 7.5 + 13.5],
    ["c1", 3, 3 + 9 + 15],
    ["c2", 3, 4.5 + 10.5 + 16.5],
    ["c3", 3, 6 + 12 + 18],
  ]);
  await myc!.query(`INSERT INTO ${mySrc} VALUES (13, 'c9', 2.00), (14, 'c9', 3.00)`);
  const second = await network.nodes[1]!.runPipeline(id);
  assert.deepEqual([second.read, second.written], [2, 1], "only the two new rows are read");
  const [after] = await myc!.query(`SELECT COUNT(*) AS n FROM ${myDst}`);
  assert.equal(Number((after as { n: number }[])[0]!.n), 5);
});
