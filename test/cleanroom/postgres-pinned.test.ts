/**
 * A party's own PostgreSQL over TLS terminated in its enclave: a throwaway SSL-only instance with a password
 * (test/enclave/net/postgres-instance.ts) holds the bank's cards and the retailer's purchases; each dataset
 * names `pin` (its certificate's SHA-256), so the partner's and the compute party's enclaves connect through
 * their hosts' relays with that certificate pinned. The rows are those of the csv and parquet run; no row
 * canary or password crosses a host in the clear; a wrong pin is refused before a row is read and no run is
 * recorded.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { serialize } from "node:v8";
import pgLib from "pg";
import { readRuns } from "../../src/chain/actions/read-runs.ts";
import { certificateSha256 } from "../../src/enclave/net/connect.ts";
import { CollabRefusedError } from "../../src/sdk/collab/errors.ts";
import { parseCollabFile } from "../../src/sdk/collab/file.ts";
import type { CollabStep } from "../../src/sdk/collab/run.ts";
import { postgresRunner, startPostgres, type PostgresInstance } from "../enclave/net/postgres-instance.ts";
import { created, exampleFile, exampleRows, load, run, startFixture, type CollabFixture } from "./fixture.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;
const canary = `CANARY-cr-pg-${randomBytes(6).toString("hex")}`;

let fx: CollabFixture;
let pg: PostgresInstance;
let url = "";
let pin = "";

/** The example's csv and parquet rows copied into the TLS-only server, plus a card whose tier is the canary. */
async function fill(): Promise<void> {
  const { purchases, cards } = await exampleRows(fx);
  const c = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });
  await c.connect();
  await c.query("CREATE TABLE purchases (purchase_id bigint, customer_id bigint, category text, amount bigint)");
  await c.query("CREATE TABLE cards (customer_id bigint, tier text)");
  for (const r of purchases) await c.query("INSERT INTO purchases VALUES ($1, $2, $3, $4)", r.map((v) => (typeof v === "bigint" ? v.toString() : v)));
  for (const r of cards) await c.query("INSERT INTO cards VALUES ($1, $2)", r.map((v) => (typeof v === "bigint" ? v.toString() : v)));
  await c.query("INSERT INTO cards VALUES (999999, $1)", [canary]);
  await c.end();
}

before(async () => {
  fx = await startFixture(["retailer", "bank"]);
  if ("skip" in runner) return;
  pg = await startPostgres(runner);
  await fill();
  url = `postgres://${pg.user}:${pg.password}@127.0.0.1:${pg.port}/${pg.database}`;
  pin = certificateSha256(pg.certPem);
});
after(async () => {
  await fx?.close();
  pg?.stop();
});

/** The example with both parties' data in the TLS server, each dataset pinned (`bankPin` for the bank's). */
const pinnedFile = (bankPin: string) =>
  exampleFile((f) => {
    const parties = f.parties as { datasets: Record<string, unknown> }[];
    parties[0]!.datasets = { purchases: { type: "postgres", url, table: "purchases", pin } };
    parties[1]!.datasets = { cards: { type: "postgres", url, table: "cards", pin: bankPin } };
    f.limits = { partnerTimeoutMs: 3_000 };
  });

describe("clean room datasets in a party's own PostgreSQL over pinned TLS", () => {
  test("both enclaves read their party's tables through their relays with the certificate pinned; the rows are the file run's; no canary or password crosses a host", { skip }, async () => {
    const files = await run(fx, await created(fx, load(fx, exampleFile())));
    const frames = fx.frames.length;
    const carried = fx.carried.length;
    const made = await created(fx, load(fx, pinnedFile(pin)));
    const out = await run(fx, made);
    assert.deepEqual(out.result!.rows, files.result!.rows);
    assert.equal(out.result!.suppressed, files.result!.suppressed);
    const toServer = fx.carried.slice(carried).filter((c) => c.destination.endsWith(`:${pg.port}`));
    assert.ok(toServer.length > 0, "the datasets were read through the relays");
    const bytes = Buffer.concat(fx.carried.slice(carried).map((c) => c.bytes));
    for (const secret of [canary, pg.password, "SELECT"]) assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `the relays carried ${secret} in the clear`);
    for (const frame of fx.frames.slice(frames)) {
      const wire = serialize(frame);
      for (const secret of [canary, pg.password]) assert.equal(wire.indexOf(Buffer.from(secret)), -1, `a gate frame carries ${secret}`);
    }
  });

  test("a wrong pin on the bank's table is refused in the bank's enclave: no row leaves and no run is recorded", { skip }, async () => {
    const made = await created(fx, load(fx, pinnedFile("00".repeat(32))));
    const carried = fx.carried.length;
    const steps: CollabStep[] = [];
    await assert.rejects(run(fx, made, { onStep: (s) => steps.push(s) }), (e: unknown) => {
      assert.ok(e instanceof CollabRefusedError, String(e));
      assert.equal(e.party, "bank");
      assert.match(`${e.code}: ${e.message}`, /NET_PIN_MISMATCH/);
      return true;
    });
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
    assert.equal(steps.filter((s) => s.step === "partner-sealed").length, 0, "the bank sent no dataset");
    assert.equal(Buffer.concat(fx.carried.slice(carried).map((c) => c.bytes)).indexOf(Buffer.from(pg.password)), -1);
    await new Promise((resolve) => setTimeout(resolve, 3_500));
  });
});

test("the collaboration file takes pin on a postgres or mysql dataset only", () => {
  const file = (descriptor: Record<string, unknown>) => exampleFile((f) => ((f.parties as { datasets: Record<string, unknown> }[])[1]!.datasets = { cards: descriptor }));
  const pinned = { type: "postgres", url: "postgres://db.example:5432/bank", table: "cards", pin: "ab".repeat(32) };
  assert.deepEqual(parseCollabFile(file(pinned), "/x/c.json").file.parties[1]!.datasets.cards, pinned);
  const mysqlPinned = { ...pinned, type: "mysql", url: "mysql://db.example/bank" };
  assert.deepEqual(parseCollabFile(file(mysqlPinned), "/x/c.json").file.parties[1]!.datasets.cards, mysqlPinned);
  assert.throws(() => parseCollabFile(file({ type: "csv", path: "cards.csv", pin: pinned.pin }), "/x/c.json"), (e: unknown) => (e as { code?: string }).code === "COLLAB_FILE_INVALID" && /datasets\.cards: "pin".*postgres and mysql/.test((e as Error).message));
  assert.throws(() => parseCollabFile(file({ ...pinned, pin: "not-hex" }), "/x/c.json"), /"pin"/);
});
