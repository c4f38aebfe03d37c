/**
 * A clean-room run against plain DuckDB on the same data:
 *
 *   npm run bench -- clean-room [--rows N] [--parties P] [--runs R] [--json]
 *
 * P parties (default 2) with N generated, deterministic rows each (default 100,000) in parquet files: party 0
 * has purchases (customer_id, category, amount), party 1 cards (customer_id, tier), party k > 1 a table
 * extra_k (customer_id, score). The query joins them all on customer_id and groups by category.
 *
 * - plain: a fresh in-memory DuckDB instance in this process loads every file into a table (CREATE TABLE AS
 *   SELECT * FROM read_parquet) and runs the same query, its rows read into JS (no policy, no hashing).
 * - clean room: on an embedded network (one node and enclave process per party, already running, the
 *   collaboration created and approved), from the run's start to the verified result opened by the
 *   recipient: every enclave checks the approvals, the query and its peers; the compute enclave loads its
 *   own file in place; each partner reads its file and sends it as DuckDB vectors over mutual attested TLS
 *   to the compute enclave, which loads them, runs the query under the policy and seals the result; the
 *   run is recorded on chain and the result delivered and checked.
 *
 * Both are measured in the same process run, interleaved: plain, clean room, plain, ... plain (R clean-room
 * runs after one warm-up, R + 1 plain runs); the medians are reported, and their ratio, so a change in the
 * machine's load during the run moves both sides; each measurement starts 250 ms after the previous one ended,
 * so work one leaves behind (an enclave freeing its DuckDB instance once its outcome is out) is not timed in the
 * next. Where the clean room's time goes is reported from the
 * median run's steps (the partners' reads and transfers overlap the compute enclave's own load, so the
 * stages are wall-clock spans, not a sum of work). The last stdout line is one JSON object.
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

const { values } = parseArgs({ options: { rows: { type: "string", default: "100000" }, parties: { type: "string", default: "2" }, runs: { type: "string", default: "3" }, json: { type: "boolean", default: false } } });
const rows = Number(values.rows);
const parties = Number(values.parties);
const runs = Number(values.runs);
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(parties) || parties < 2 || parties > 8 || !Number.isInteger(runs) || runs < 1 || runs > 50) {
  process.stderr.write("--rows takes a positive integer, --parties an integer from 2 to 8, --runs an integer from 1 to 50\n");
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
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Each measurement starts on a settled machine: what the previous one left running (an enclave closing its DuckDB
// instance after its outcome is out, a node publishing) must not land in the next one's time.
const settle = () => new Promise((resolve) => setTimeout(resolve, 250));
const plainMs: number[] = [];
const measurePlain = async () => {
  await settle();
  plainMs.push((await plain()).ms);
  log(`plain DuckDB: ${plainMs.at(-1)!.toFixed(0)} ms`);
};
await measurePlain();
log("starting the embedded network (one node and enclave process per party)");
const c = await startCollabNetwork(loaded);
const cleanRoom: { ms: number; rows: number; suppressed: number; marks: Record<string, number> }[] = [];
try {
  const made = await createAndApprove(c, loaded);
  // One warm-up run (not measured): the enclaves' first DuckDB instance and code paths.
  await runCollaboration(c.net, { ...made, loaded, nodes: c.nodes });
  for (let r = 0; r < runs; r++) {
    const marks: Record<string, number> = {};
    await settle();
    const started = performance.now();
    const onStep = (s: CollabStep) => {
      marks[s.step === "partner-sealed" ? `partner-sealed:${s.party}` : s.step] = performance.now() - started;
    };
    const out = await runCollaboration(c.net, { ...made, loaded, nodes: c.nodes, onStep });
    cleanRoom.push({ ms: performance.now() - started, rows: out.result?.rows.length ?? 0, suppressed: out.result?.suppressed ?? 0, marks });
    log(`clean room: ${cleanRoom.at(-1)!.ms.toFixed(0)} ms`);
    await measurePlain();
  }
} finally {
  await c.network.close();
}
await rm(dir, { recursive: true, force: true });
const result = cleanRoom.find((x) => x.ms === median(cleanRoom.map((y) => y.ms)))!;
const marks = result.marks;
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
  runs,
  plain_ms: Math.round(median(plainMs)),
  clean_room_ms: Math.round(result.ms),
  ratio: Math.round((result.ms / median(plainMs)) * 100) / 100,
  plain_runs_ms: plainMs.map(Math.round),
  clean_room_runs_ms: cleanRoom.map((x) => Math.round(x.ms)),
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
