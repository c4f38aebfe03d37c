/**
 * A partner's filtered file across the transfer (collab/transfer.ts), both ends in one process over a duplex
 * pair: the compute side loads exactly the rows the approved query's own condition keeps and records the
 * filter; a filter that is not the one the compute side derives from the approved SQL is refused.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { duplexPair } from "node:stream";
import { test } from "node:test";
import { serialize } from "node:v8";
import { DuckDBInstance } from "@duckdb/node-api";
import { createMessageStream } from "../../../src/enclave/net/messages.ts";
import { CollabJobError } from "../../../src/enclave/jobs/collab/errors.ts";
import { rowFilters } from "../../../src/enclave/jobs/collab/row-filter.ts";
import { MAX_TRANSFER_MESSAGE, openSources, receiveDatasets, sendDatasets, TRANSFER_VERSION } from "../../../src/enclave/jobs/collab/transfer.ts";

const sql = "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category";
const header = { v: TRANSFER_VERSION, collaborationId: "7", runId: 1, party: 1, termsHash: `0x${"ab".repeat(32)}` as const };

async function withCards(use: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "cloister-transfer-filter-"));
  try {
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    await c.run(`COPY (SELECT i AS customer_id, CASE WHEN i % 3 = 0 THEN 'gold' ELSE 'silver' END AS tier, 'secret ' || i AS notes FROM range(5000) t(i)) TO '${join(dir, "cards.parquet")}' (FORMAT parquet)`);
    c.closeSync();
    db.closeSync();
    await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("the compute side loads only the rows the partner's filter kept, and both ends name the filter", async () => {
  await withCards(async (dir) => {
    const [a, b] = duplexPair();
    const filters = await rowFilters(sql, {});
    const sources = await openSources({ cards: { type: "parquet", path: "cards.parquet" } }, dir, undefined, new Set(["customer_id", "tier", "c", "p", "category"]), undefined, filters);
    const instance = await DuckDBInstance.create(":memory:");
    const compute = createMessageStream(b, { maxMessageBytes: MAX_TRANSFER_MESSAGE });
    try {
      const [sent, received] = await Promise.all([
        sendDatasets(createMessageStream(a, { maxMessageBytes: MAX_TRANSFER_MESSAGE }), header, "bank", sources),
        receiveDatasets(compute, instance, header, "bank", () => {}, Promise.resolve(filters)).then(async (loaded) => {
          await compute.send(serialize({ ok: true }));
          // The partner ends its side once it heard the answer.
          assert.equal(await compute.receive(), null);
          return loaded;
        }),
      ]);
      const filter = "SELECT * FROM cards AS c WHERE (c.tier = 'gold')";
      assert.deepEqual(sent.map((d) => [d.name, d.rowCount, d.filter]), [["cards", 1667, filter]]);
      assert.deepEqual(received.map((d) => [d.name, d.rowCount, d.filter]), [["cards", 1667, filter]]);
      const c = await instance.connect();
      const tiers = (await c.runAndReadAll("SELECT DISTINCT tier FROM cards")).getRowsJS();
      assert.deepEqual(tiers, [["gold"]]);
      // Projection too: the column the query does not name never crossed.
      assert.deepEqual((await c.runAndReadAll("SELECT column_name FROM information_schema.columns WHERE table_name = 'cards' ORDER BY 1")).getRowsJS(), [["customer_id"], ["tier"]]);
      c.closeSync();
    } finally {
      await sources.close();
      instance.closeSync();
    }
  });
});

test("a filter the approved SQL does not give is refused before any row is loaded", async () => {
  await withCards(async (dir) => {
    const [a, b] = duplexPair();
    // The partner's side applies a condition of its own; the compute side derives another from the approved SQL.
    const forged = new Map([["cards", "SELECT * FROM cards AS c WHERE (c.customer_id < 10)"]]);
    const sources = await openSources({ cards: { type: "parquet", path: "cards.parquet" } }, dir, undefined, undefined, undefined, forged);
    const instance = await DuckDBInstance.create(":memory:");
    try {
      const sending = sendDatasets(createMessageStream(a, { maxMessageBytes: MAX_TRANSFER_MESSAGE }), header, "bank", sources).catch((e: unknown) => e);
      await assert.rejects(
        receiveDatasets(createMessageStream(b, { maxMessageBytes: MAX_TRANSFER_MESSAGE }), instance, header, "bank", () => {}, rowFilters(sql, {})),
        (e: unknown) => e instanceof CollabJobError && e.code === "COLLAB_TRANSFER_INVALID" && /filter on cards/.test(e.message),
      );
      b.destroy();
      await sending;
      const c = await instance.connect();
      assert.equal((await c.runAndReadAll("SELECT count(*) FROM information_schema.tables WHERE table_name = 'cards'")).getRowsJS()[0]![0], 0n);
      c.closeSync();
    } finally {
      await sources.close();
      instance.closeSync();
    }
  });
});
