/**
 * Pipeline throughput, PostgreSQL → SQL transform → PostgreSQL:
 *
 *   npm run bench -- pipeline [--rows N] [--json]
 *
 * Generates N rows in a fresh source table of the machine's PostgreSQL
 * (PGHOST/PGPORT/PGUSER/PGDATABASE, default 127.0.0.1:5432 postgres/test),
 * then runs the same pipeline twice, side by side in this run:
 *
 *  - enclave: on an embedded network of one node, the owner creates the
 *    pipeline and the node runs it (sealed spec unwrapped inside the
 *    enclave, extract, DuckDB SQL, load with the run marker, sealed cursor,
 *    provenance signed, published to IPFS, run anchored on chain); timed from
 *    the node's runPipeline call to the anchored run;
 *  - plain: the same connector code in this process, outside any enclave:
 *    `pg` reads (the postgres connector, batches of 10,000), the same SQL in
 *    DuckDB (in memory), `pg` multi-row INSERTs of 500 rows in one
 *    transaction (the connector's writeRows); no COPY on either side, no
 *    marker, no chain, no IPFS.
 *
 * Prints rows/s of both and their ratio (enclave / plain). The last line of
 * stdout is one JSON object. Figures on a shared machine are provisional.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { startEmbeddedNetwork } from "../src/devnet/embedded.ts";
import { openDataset, writeRows } from "../src/enclave/connectors/index.ts";
import { sqlTransform } from "../src/enclave/pipeline/transform.ts";
import { listVerifiedEnclaves } from "../src/sdk/enclaves.ts";
import { createPipeline } from "../src/sdk/pipelines.ts";
import { machineSpeedMs } from "./machine-speed.ts";

const { values } = parseArgs({ options: { rows: { type: "string", default: "100000" }, json: { type: "boolean", default: false } } });
const rows = Number(values.rows);
if (!Number.isInteger(rows) || rows < 1) {
  process.stderr.write("--rows takes a positive integer\n");
  process.exit(2);
}

const conn = { host: process.env.PGHOST ?? "127.0.0.1", port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? "postgres", database: process.env.PGDATABASE ?? "test" };
const url = `postgres://${conn.user}@${conn.host}:${conn.port}/${conn.database}`;
const tag = `${process.pid}_${Date.now()}`;
const src = `bench_pl_src_${tag}`;
const dstEnclave = `bench_pl_dst_enclave_${tag}`;
const dstPlain = `bench_pl_dst_plain_${tag}`;
const sql = "SELECT id, customer, amount * 1.2 AS gross, CASE WHEN amount > 50 THEN 'big' ELSE 'small' END AS size FROM source WHERE amount > 1";
const log = (m: string) => process.stderr.write(`${m}\n`);

const client = new pg.Client(conn);
await client.connect();
try {
  log(`generating ${rows} rows in ${src}`);
  await client.query(`CREATE TABLE ${src} AS SELECT g::bigint AS id, 'c' || (g % 1000) AS customer, ((g % 10000) / 100.0)::numeric(10,2) AS amount FROM generate_series(1, ${rows}) g`);
  await client.query(`ALTER TABLE ${src} ADD PRIMARY KEY (id)`);
  const expected = Number((await client.query(`SELECT count(*) FROM ${src} WHERE amount > 1`)).rows[0].count);
  const speedBefore = machineSpeedMs();

  log("plain: pg → DuckDB → pg in this process");
  const plainStart = performance.now();
  const reader = await openDataset({ type: "postgres", url, table: src, cursor: "id" });
  const out = await sqlTransform(sql, reader.columns, reader);
  const written = await writeRows({ type: "postgres", url, table: dstPlain, mode: "append" }, out.columns, out.batches);
  const plainMs = performance.now() - plainStart;
  if (written.rowCount !== expected) throw new Error(`plain wrote ${written.rowCount} rows, expected ${expected}`);

  log("enclave: an embedded network of one node");
  const network = await startEmbeddedNetwork({ pipelines: false });
  let enclaveMs: number;
  let anchored;
  try {
    const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
    const { pipelineId } = await createPipeline({
      writer: network.requester,
      store: network.store,
      contract: network.deployment.pipelines!,
      spec: { name: "bench", source: { type: "postgres", url, table: src, cursor: "id" }, transform: { kind: "sql", sql }, destination: { type: "postgres", url, table: dstEnclave, mode: "append" }, schedule: null },
      candidates: verified,
    });
    const start = performance.now();
    anchored = await network.nodes[0]!.runPipeline(pipelineId);
    enclaveMs = performance.now() - start;
  } finally {
    await network.close();
  }
  if (anchored.written !== expected) throw new Error(`the enclave wrote ${anchored.written} rows, expected ${expected}`);
  const speedMs = (speedBefore + machineSpeedMs()) / 2;

  const round = (x: number) => Math.round(x * 10) / 10;
  const enclaveRate = rows / (enclaveMs / 1000);
  const plainRate = rows / (plainMs / 1000);
  const summary = {
    benchmark: "pipeline",
    rows,
    written: expected,
    enclave: { ms: round(enclaveMs), rows_per_s: Math.round(enclaveRate), anchor_gas: Number(anchored.gasUsed) },
    plain: { ms: round(plainMs), rows_per_s: Math.round(plainRate), method: "pg reads (postgres connector) + DuckDB + pg multi-row INSERTs (writeRows), same process, no enclave" },
    ratio: Math.round((enclaveRate / plainRate) * 1000) / 1000,
    machine_speed_ms: round(speedMs),
    provisional: true,
  };
  if (!values.json) {
    process.stdout.write(`pipeline ${rows} rows (${expected} written): enclave ${summary.enclave.rows_per_s} rows/s, plain ${summary.plain.rows_per_s} rows/s, ratio ${summary.ratio}\n`);
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await client.query(`DROP TABLE IF EXISTS ${src}, ${dstEnclave}, ${dstPlain}`).catch(() => undefined);
  await client.end();
}
