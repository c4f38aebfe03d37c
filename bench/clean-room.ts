/**
 * A clean-room run against plain DuckDB on the same data:
 *
 *   npm run bench -- clean-room [--rows N] [--parties P] [--json]
 *
 * P parties (default 2) with N generated, deterministic rows each (default 100,000) in parquet files: party 0
 * has purchases (customer_id, category, amount), party 1 cards (customer_id, tier), party k > 1 a table
 * extra_k (customer_id, score). The query joins them all on customer_id and groups by category.
 *
 * - plain: DuckDB in this process loads the same files into tables and runs the same query (no policy).
 * - clean room: on an embedded network (one node and enclave process per party, already running, the
 *   collaboration created and approved), from the run's start to the verified result opened by the
 *   recipient: every party's enclave reads its file through the connector, partners seal their rows to the
 *   compute enclave, which loads them into DuckDB, runs the query under the policy and seals the result;
 *   the run is recorded on chain and the result delivered and checked.
 *
 * Both are measured in the same process run, the plain one first and last (the mean is reported). Where the
 * clean room's time goes is reported from the run's steps (the partners' reads and transfers overlap the
 * compute enclave's own load, so the stages are wall-clock spans, not a sum of work). The last stdout line is one JSON object.
 * Provisional: the machine's 2 cores are shared.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { createAndApprove, startCollabNetwork } from "../src/devnet/collab-embedded.ts";
import { parseCollabFile } from "../src/sdk/collab/file.ts";
import { runCollaboration, type CollabStep } from "../src/sdk/collab/run.ts";

const { values } = parseArgs({ options: { rows: { type: "string", default: "100000" }, parties: { type: "string", default: "2" }, json: { type: "boolean", default: false } } });
const rows = Number(values.rows);
const parties = Number(values.parties);
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(parties) || parties < 2 || parties > 8) {
  process.stderr.write("--rows takes a positive integer, --parties an integer from 2 to 8\n");
  process.exit(2);
}
const log = (m: string) => process.stderr.write(`${m}\n`);

const dir = await mkdtemp(join(tmpdir(), "cloister-bench-cr-"));
const customers = Math.max(1, Math.floor(rows / 4));
const tables = ["purchases", "cards", ...Array.from({ length: parties - 2 }, (_, i) => `extra_${i + 2}`)];
{
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  // Deterministic: every value is a function of the row number.
  await c.run(`COPY (SELECT i AS purchase_id, (i * 7919) % ${customers} AS customer_id, ['books','garden','electronics','toys','food'][1 + (i % 5)] AS category, (i * 31) % 500 AS amount FROM range(${rows}) t(i)) TO '${join(dir, "purchases.parquet")}' (FORMAT parquet)`);
  await c.run(`COPY (SELECT i % ${customers} AS customer_id, CASE WHEN i % 3 = 0 THEN 'gold' ELSE 'silver' END AS tier FROM range(${rows}) t(i) WHERE i < ${customers}) TO '${join(dir, "cards.parquet")}' (FORMAT parquet)`);
  for (const t of tables.slice(2)) await c.run(`COPY (SELECT i % ${customers} AS customer_id, i % 100 AS score FROM range(${rows}) t(i) WHERE i < ${customers}) TO '${join(dir, `${t}.parquet`)}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
}
// cards and extra_k have one row per customer (so the join does not multiply); purchases has N rows.
const joins = tables.slice(1).map((t, i) => ` JOIN ${t} t${i + 1} ON p.customer_id = t${i + 1}.customer_id`).join("");
const query = `SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p${joins} WHERE t1.tier = 'gold' GROUP BY p.category`;

async function plain(): Promise<{ ms: number; rows: unknown[][] }> {
  const started = performance.now();
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  for (const t of tables) await c.run(`CREATE TABLE ${t} AS SELECT * FROM read_parquet('${join(dir, `${t}.parquet`)}')`);
  const result = (await c.runAndReadAll(query)).getRowsJS();
  c.closeSync();
  db.closeSync();
  return { ms: performance.now() - started, rows: result };
}

const file = {
  name: "bench",
  parties: tables.map((t, i) => ({ name: i === 0 ? "retailer" : `party${i}`, datasets: { [t]: { type: "parquet", path: `${t}.parquet` } } })),
  compute: "retailer",
  query,
  policy: { identity: "p.customer_id", minGroupSize: 5 },
  recipient: { party: "retailer" },
  maxRuns: 100,
};
await writeFile(join(dir, "collaboration.json"), JSON.stringify(file));
const loaded = parseCollabFile(file, join(dir, "collaboration.json"));

log(`generated ${parties} parquet files of ${rows} rows (purchases) and ${customers} rows (the others) in ${dir}`);
const plain1 = await plain();
log(`plain DuckDB: ${plain1.ms.toFixed(0)} ms`);
log("starting the embedded network (one node and enclave process per party)");
const c = await startCollabNetwork(loaded);
let result;
const marks: Record<string, number> = {};
try {
  const made = await createAndApprove(c, loaded);
  // One warm-up run (not measured): the enclaves' first DuckDB instance and code paths.
  await runCollaboration(c.net, { ...made, loaded, nodes: c.nodes });
  const started = performance.now();
  const onStep = (s: CollabStep) => {
    marks[s.step === "partner-sealed" ? `partner-sealed:${s.party}` : s.step] = performance.now() - started;
  };
  const out = await runCollaboration(c.net, { ...made, loaded, nodes: c.nodes, onStep });
  const ms = performance.now() - started;
  result = { ms, rows: out.result?.rows.length ?? 0, suppressed: out.result?.suppressed ?? 0 };
} finally {
  await c.network.close();
}
const plain2 = await plain();
await rm(dir, { recursive: true, force: true });
const plainMs = (plain1.ms + plain2.ms) / 2;
const partnersDone = Math.max(...Object.entries(marks).filter(([k]) => k.startsWith("partner-sealed")).map(([, v]) => v));
const stages = {
  // Attestation of every peer, the compute enclave's listener, each partner's read and aTLS stream, and (at the same time) the loads into DuckDB.
  partners_read_sent_loaded_ms: Math.round(partnersDone),
  // After the last partner: the compute party's own load if still running, the query under the policy, sealing the result.
  compute_query_policy_seal_ms: Math.round(marks.computed! - partnersDone),
  record_on_chain_ms: Math.round(marks.recorded! - marks.computed!),
  publish_deliver_verify_ms: Math.round(result.ms - marks.recorded!),
};
const summary = {
  benchmark: "clean-room",
  rows,
  parties,
  plain_ms: Math.round(plainMs),
  clean_room_ms: Math.round(result.ms),
  ratio: Math.round((result.ms / plainMs) * 100) / 100,
  delivered_rows: result.rows,
  suppressed: result.suppressed,
  stages,
  provisional: true,
};
if (!values.json) {
  process.stdout.write(`plain DuckDB ${summary.plain_ms} ms, clean room ${summary.clean_room_ms} ms: ${summary.ratio}x\n`);
  for (const [k, v] of Object.entries(stages)) process.stdout.write(`  ${k}: ${v}\n`);
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
