/**
 * A pipeline run whose postgres source and destination name a certificate
 * `pin`: through the enclave relay to a throwaway SSL-only PostgreSQL, TLS in
 * the enclave; the bytes the host carried hold no row value, password or SQL;
 * a second run of the same run id is a no-op (the run marker); a pinned
 * endpoint without the enclave's network is refused.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pgLib from "pg";
import { certificateSha256 } from "../../../src/enclave/net/connect.ts";
import { runPipeline } from "../../../src/enclave/pipeline/run-pipeline.ts";
import type { PipelineSpec } from "../../../src/protocol/pipeline-package.ts";
import { carriedContains, startTestEnclave, type TestEnclave } from "../net/harness.ts";
import { postgresRunner, startPostgres, type PostgresInstance } from "../net/postgres-instance.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;
let pg: PostgresInstance;
let enclave: TestEnclave;
let spec: PipelineSpec;
const canary = `CANARY-pl-${randomBytes(8).toString("hex")}`;

before(async () => {
  if ("skip" in runner) return;
  pg = await startPostgres(runner);
  enclave = startTestEnclave();
  const url = `postgres://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`;
  const admin = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });
  await admin.connect();
  await admin.query("CREATE TABLE orders (id bigint PRIMARY KEY, note text, amount numeric(10,2))");
  await admin.query("INSERT INTO orders VALUES (1, 'a', 1.50), (2, $1, 2.25), (3, 'c', 3.00)", [canary]);
  await admin.end();
  const pin = certificateSha256(pg.certPem);
  spec = {
    name: "pinned",
    source: { type: "postgres", url, table: "orders", cursor: "id", pin },
    transform: { kind: "sql", sql: "SELECT id, note, amount * 2 AS doubled FROM source" },
    destination: { type: "postgres", url, table: "orders_doubled", mode: "append", pin },
    schedule: null,
  };
});
after(async () => {
  await enclave?.close();
  pg?.stop();
});

test("a pipeline over pinned postgres endpoints runs through the relay with TLS in the enclave; a repeated run id writes nothing", { skip }, async () => {
  const first = await enclave.run<{ read: number; written: number; resumed: boolean }>("pipelineRun", { spec, runId: "0xpinned-run-1" });
  assert.deepEqual(first, { read: 3, written: 3, resumed: false });
  const again = await enclave.run<{ read: number; written: number; resumed: boolean }>("pipelineRun", { spec, runId: "0xpinned-run-1" });
  assert.deepEqual(again, { read: 3, written: 3, resumed: true }, "the marker's record, nothing written");
  const admin = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });
  await admin.connect();
  assert.equal((await admin.query("SELECT count(*)::int AS n FROM orders_doubled")).rows[0].n, 3);
  await admin.end();
  for (const plaintext of [canary, pg.password, "orders_doubled", "SELECT"]) assert.equal(carriedContains(enclave.carried, plaintext), false, `${plaintext} crossed the host in the clear`);
});

test("a pinned endpoint without the enclave's network is refused, not opened in the clear", { skip }, async () => {
  await assert.rejects(runPipeline(spec, { after: undefined, runId: "0xno-net", sealCursor: () => new Uint8Array(1) }), /needs the enclave's network/);
});
