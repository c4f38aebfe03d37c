/**
 * One embedded network with a node (and enclave process) per party, reused by a test file's cases: each
 * case makes its own collaboration from a file object (datasets relative to `baseDir`).
 */
import { cp, mkdtemp } from "node:fs/promises";
import { DuckDBInstance } from "@duckdb/node-api";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAndApprove, startCollabNetwork, type EmbeddedCollab } from "../../src/devnet/collab-embedded.ts";
import type { FrameDirection } from "../../src/enclave/client.ts";
import type { CarriedBytes } from "../../src/host/net-relay.ts";
import { parseCollabFile, type LoadedCollabFile } from "../../src/sdk/collab/file.ts";
import { runCollaboration, type RunOptions } from "../../src/sdk/collab/run.ts";

export const EXAMPLE_DIR = new URL("../../examples/clean-room/", import.meta.url).pathname;

export interface CollabFixture {
  c: EmbeddedCollab;
  dir: string;
  frames: unknown[];
  /** Every byte the nodes' relays carried (the partner-to-compute TLS sessions among them). */
  carried: CarriedBytes[];
  close(): Promise<void>;
}

/** A network for `parties` parties; the example's csv and parquet files copied to a fresh folder. */
export async function startFixture(parties: string[], options: { dataDir?: string } = {}): Promise<CollabFixture> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-cleanroom-"));
  await cp(EXAMPLE_DIR, dir, { recursive: true });
  const frames: unknown[] = [];
  const carried: CarriedBytes[] = [];
  const placeholder = parseCollabFile(
    { name: "x", parties: parties.map((name) => ({ name, datasets: { [`t_${name}`]: { type: "csv", path: "purchases.csv" } } })), compute: parties[0], query: "SELECT 1", policy: { identity: "customer_id", minGroupSize: 5 }, recipient: { party: parties[0] } },
    join(dir, "placeholder.json"),
  );
  const c = await startCollabNetwork(placeholder, { ...(options.dataDir ? { dataDir: options.dataDir } : {}), onFrame: (_node: number, _d: FrameDirection, frame: unknown) => frames.push(frame), onCarried: (_node, c) => carried.push(c) });
  return { c, dir, frames, carried, close: () => c.network.close() };
}

/** The example collaboration, changed by `edit`. */
export function exampleFile(edit: (f: Record<string, unknown>) => void = () => {}): Record<string, unknown> {
  const f: Record<string, unknown> = {
    name: "gold-card-spend",
    parties: [
      { name: "retailer", datasets: { purchases: { type: "csv", path: "purchases.csv" } } },
      { name: "bank", datasets: { cards: { type: "parquet", path: "cards.parquet" } } },
    ],
    compute: "retailer",
    query:
      "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category ORDER BY p.category",
    policy: { identity: "customer_id", minGroupSize: 5 },
    recipient: { party: "retailer" },
  };
  edit(f);
  return f;
}

/** The example's rows (purchases.csv, cards.parquet), for tests that copy them into a database server. */
export async function exampleRows(fx: CollabFixture): Promise<{ purchases: unknown[][]; cards: unknown[][] }> {
  const duck = await DuckDBInstance.create(":memory:");
  const d = await duck.connect();
  try {
    const purchases = (await d.runAndReadAll(`SELECT purchase_id, customer_id, category, amount FROM read_csv('${join(fx.dir, "purchases.csv")}')`)).getRowsJS();
    const cards = (await d.runAndReadAll(`SELECT customer_id, tier FROM read_parquet('${join(fx.dir, "cards.parquet")}')`)).getRowsJS();
    return { purchases, cards };
  } finally {
    d.closeSync();
    duck.closeSync();
  }
}

export function load(fx: CollabFixture, file: Record<string, unknown>): LoadedCollabFile {
  return parseCollabFile(file, join(fx.dir, "collaboration.json"));
}

/** Creates, approves (every party) and returns what a run needs. */
export async function created(fx: CollabFixture, loaded: LoadedCollabFile) {
  const nodes = fx.c.nodes.slice(0, loaded.file.parties.length).map((n, i) => ({ ...n, name: loaded.file.parties[i]!.name }));
  const made = await createAndApprove({ ...fx.c, nodes }, loaded);
  return { ...made, loaded, nodes };
}

export async function run(fx: CollabFixture, made: Awaited<ReturnType<typeof created>>, extra: Partial<RunOptions> = {}) {
  return runCollaboration(fx.c.net, { ...made, ...extra });
}
