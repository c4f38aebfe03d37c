/**
 * A party's own MariaDB over TLS terminated in its enclave: a throwaway TLS-only instance with a password
 * (test/enclave/net/mariadb-instance.ts) holds the retailer's purchases and the bank's cards, each dataset
 * pinned to its certificate, so both enclaves connect through their hosts' relays. The result is the csv and
 * parquet run's; no row canary, user or password crosses a host in the clear.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { certificateSha256 } from "../../src/enclave/net/connect.ts";
import { mariadbSkip, startMariadb, type MariadbInstance } from "../enclave/net/mariadb-instance.ts";
import { created, exampleFile, exampleRows, load, run, startFixture, type CollabFixture } from "./fixture.ts";

const skip = mariadbSkip();
const canary = `CANARY-cr-my-${randomBytes(6).toString("hex")}`;
let fx: CollabFixture;
let db: MariadbInstance;

/** SQL literals of DuckDB values (integers and plain text here). */
const literal = (v: unknown) => (typeof v === "bigint" || typeof v === "number" ? String(v) : `'${String(v).replaceAll("'", "''")}'`);
const values = (rows: unknown[][]) => rows.map((r) => `(${r.map(literal).join(", ")})`).join(", ");

before(async () => {
  fx = await startFixture(["retailer", "bank"]);
  if (skip) return;
  db = await startMariadb({ tls: true });
  const { purchases, cards } = await exampleRows(fx);
  db.admin(
    `USE ${db.database}; CREATE TABLE purchases (purchase_id BIGINT, customer_id BIGINT, category TEXT, amount BIGINT); CREATE TABLE cards (customer_id BIGINT, tier TEXT);` +
      `INSERT INTO purchases VALUES ${values(purchases)}; INSERT INTO cards VALUES ${values(cards)}, (999999, '${canary}')`,
  );
});
after(async () => {
  await fx?.close();
  await db?.stop();
});

test("clean room datasets in each party's MariaDB over pinned TLS: the rows are the file run's; no canary, user or password crosses a host", { skip }, async () => {
  const files = await run(fx, await created(fx, load(fx, exampleFile())));
  const url = `mysql://${db.user}:${db.password}@127.0.0.1:${db.port}/${db.database}`;
  const pin = certificateSha256(db.certPem!);
  const pinned = exampleFile((f) => {
    const parties = f.parties as { datasets: Record<string, unknown> }[];
    parties[0]!.datasets = { purchases: { type: "mysql", url, table: "purchases", pin } };
    parties[1]!.datasets = { cards: { type: "mysql", url, table: "cards", pin } };
  });
  const carried = fx.carried.length;
  const out = await run(fx, await created(fx, load(fx, pinned)));
  assert.deepEqual(out.result!.rows, files.result!.rows);
  assert.equal(out.result!.suppressed, files.result!.suppressed);
  assert.ok(fx.carried.slice(carried).some((c) => c.destination.endsWith(`:${db.port}`)), "the datasets were read through the relays");
  const bytes = Buffer.concat(fx.carried.slice(carried).map((c) => c.bytes));
  for (const secret of [canary, db.user, db.password, "SELECT"]) assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `the relays carried ${secret} in the clear`);
});
