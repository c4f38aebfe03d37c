/**
 * Two parties (csv and parquet) on an embedded network, one node and enclave process each: the delivered rows
 * are the approved query's under the policy (a small group suppressed), and every refusal the issue names:
 * a row-level query, an unapproved query text, a withdrawn approval, a peer enclave with another measurement
 * (both directions), a recipient key that is not the pinned one, maxRuns and an exhausted DP budget.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { keccak256, toHex } from "viem";
import { readApprovals } from "../../src/chain/actions/read-approvals.ts";
import { readCollaboration } from "../../src/chain/actions/read-collaboration.ts";
import { readRuns } from "../../src/chain/actions/read-runs.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { queryDigest } from "../../src/protocol/collaboration.ts";
import { CollabRefusedError, CollabRunError } from "../../src/sdk/collab/errors.ts";
import { created, exampleFile, load, run, startFixture, type CollabFixture } from "./fixture.ts";

let fx: CollabFixture;
before(async () => {
  // A third node, not a party: its enclave plays an impostor.
  fx = await startFixture(["retailer", "bank", "spare"]);
});
after(() => fx.close());

const refused = (code: string, party?: string) => (e: unknown) => {
  assert.ok(e instanceof CollabRefusedError || e instanceof CollabRunError, `expected a typed refusal, got ${String(e)}`);
  assert.equal((e as CollabRefusedError).code, code, (e as Error).message);
  if (party) assert.equal((e as CollabRefusedError).party, party);
  return true;
};

/** The same query by plain DuckDB over the same files, with the threshold applied by hand. */
async function plainExpected(dir: string, minGroupSize: number) {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  const r = await c.runAndReadAll(
    `SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM read_csv('${join(dir, "purchases.csv")}') p JOIN read_parquet('${join(dir, "cards.parquet")}') c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category ORDER BY p.category`,
  );
  const rows = r.getRowsJS().map((row) => row.map((v) => (typeof v === "bigint" ? Number(v) : v)));
  c.closeSync();
  db.closeSync();
  return { kept: rows.filter((row) => (row[1] as number) >= minGroupSize), small: rows.filter((row) => (row[1] as number) < minGroupSize) };
}

async function goldCards(dir: string): Promise<number> {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  const n = Number((await c.runAndReadAll(`SELECT count(*) FROM read_parquet('${join(dir, "cards.parquet")}') WHERE tier = 'gold'`)).getRowsJS()[0]![0]);
  c.closeSync();
  db.closeSync();
  return n;
}

describe("clean room, two parties", () => {
  test("the approved join runs in the compute enclave; only groups of at least minGroupSize customers reach the recipient; the run is on chain and verified", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => (f.limits = { memoryMb: 512, partnerTimeoutMs: 60_000 }))));
    const out = await run(fx, made);
    const expected = await plainExpected(fx.dir, 5);
    assert.ok(expected.small.length >= 1, "the example has a small group");
    assert.deepEqual(out.result!.columns, ["category", "customers", "total"]);
    assert.deepEqual(out.result!.rows, expected.kept);
    assert.equal(out.result!.suppressed, expected.small.length);
    assert.ok(!out.result!.rows.some((r) => r[0] === "toys"), "the small group is not delivered");
    const runs = await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!.rowsDelivered, BigInt(expected.kept.length));
    assert.equal(runs[0]!.rowsSuppressed, BigInt(expected.small.length));
    assert.equal(runs[0]!.enclave, fx.c.nodes[0]!.enclave.identity.signer);
    assert.ok(out.checks.some((c) => c.includes("recorded on chain")));
    assert.ok(existsSync(out.deliveredTo));
    // Both files were read by DuckDB in place (the retailer's in the compute enclave, the bank's in its own and sent as vectors): digests of the files.
    const { statementOfSignedEnvelope } = await import("../../src/protocol/provenance.ts");
    const predicate = (statementOfSignedEnvelope(await fx.c.network.store.get(out.provenanceCid)).predicate as unknown as Record<string, { datasets: { name: string; of?: string; rows: number; filter?: string }[] }>)["collab-compute"]!;
    // The bank sent only its gold cards: the rows the query's own condition on its table keeps, named in the provenance.
    const gold = await goldCards(fx.dir);
    assert.ok(gold > 0 && gold < 40);
    assert.deepEqual(predicate.datasets.map((d) => [d.name, d.of, d.rows, d.filter]).sort(), [
      ["cards", "file", gold, "SELECT * FROM cards AS c WHERE (c.tier = 'gold')"],
      ["purchases", "file", 149, undefined],
    ]);
    // Each digest is the SHA-256 of the whole file its party holds.
    for (const [name, file] of [["cards", "cards.parquet"], ["purchases", "purchases.csv"]]) {
      assert.equal((predicate.datasets.find((d) => d.name === name) as { digest?: string }).digest, `0x${createHash("sha256").update(readFileSync(join(fx.dir, file!))).digest("hex")}`);
    }
    // A verifier given another result blob, or another run's provenance, refuses.
    const { verifyRun } = await import("../../src/sdk/collab/run.ts");
    const provenance = await fx.c.network.store.get(out.provenanceCid);
    const sealed = await fx.c.network.store.get(out.resultCid);
    const base = { collaborationId: made.collaborationId, runId: out.runId, provenance, computeProvenanceKey: fx.c.nodes[0]!.enclave.identity.provenanceKey, terms: made.terms };
    assert.ok((await verifyRun(fx.c.net, { ...base, result: sealed })).length > 0);
    const altered = Uint8Array.from(sealed);
    altered[altered.length - 1]! ^= 1;
    await assert.rejects(verifyRun(fx.c.net, { ...base, result: altered }), /not the provenance subject/);
    await assert.rejects(verifyRun(fx.c.net, { ...base, runId: 2, result: sealed }), /another collaboration or run/);
  });

  test("with pushdown: false in the policy, the bank sends every row of its file and the result is the same", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => (f.policy = { ...(f.policy as object), pushdown: false }))));
    const out = await run(fx, made);
    assert.deepEqual(out.result!.rows, (await plainExpected(fx.dir, 5)).kept);
    const { statementOfSignedEnvelope } = await import("../../src/protocol/provenance.ts");
    const predicate = (statementOfSignedEnvelope(await fx.c.network.store.get(out.provenanceCid)).predicate as unknown as Record<string, { datasets: { name: string; rows: number; of?: string; filter?: string }[] }>)["collab-compute"]!;
    const cards = predicate.datasets.find((d) => d.name === "cards")!;
    assert.deepEqual([cards.rows, cards.of, cards.filter], [40, "file", undefined]);
  });

  test("a query that would output row-level values is refused before any data is read, naming the rule and the column", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => (f.query = "SELECT p.customer_id, p.amount FROM purchases p JOIN cards c ON p.customer_id = c.customer_id"))));
    await assert.rejects(run(fx, made), (e) => {
      refused("ROW_LEVEL_OUTPUT")(e);
      assert.match((e as Error).message, /customer_id/);
      return true;
    });
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
  });

  test("an unapproved query text is refused: the terms the parties signed name another query", async () => {
    const made = await created(fx, load(fx, exampleFile()));
    const other = "SELECT p.category, COUNT(*) AS n FROM purchases p JOIN cards c ON p.customer_id = c.customer_id GROUP BY p.category";
    const terms = { ...made.terms, queryText: other, queryDigest: queryDigest(other) };
    await assert.rejects(run(fx, made, { tamper: { terms } }), refused("COLLAB_NOT_APPROVED"));
  });

  test("a party that withdraws its approval stops the run: the host refuses, and the chain refuses the run even if a host goes on", async () => {
    const made = await created(fx, load(fx, exampleFile()));
    const before = await readApprovals(fx.c.net.reader, fx.c.net.contract, made.collaborationId, made.terms.parties.map((p) => p.account));
    await withdrawApproval(made.nodes[1]!.writer, fx.c.net.contract, made.collaborationId);
    assert.equal((await readCollaboration(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).approved, false);
    await assert.rejects(run(fx, made), (e) => {
      refused("COLLAB_NOT_APPROVED")(e);
      assert.deepEqual((e as CollabRunError).details?.missing, ["bank"]);
      return true;
    });
    // A host that skips its own check finds no standing approval on chain to hand the enclaves: they refuse.
    await assert.rejects(run(fx, made, { tamper: { skipStateCheck: true } }), refused("COLLAB_NOT_APPROVED"));
    // One that replays the signatures from before the withdrawal gets a result the chain will not record, so none is delivered.
    const replayed = before.map((a) => ({ nonce: a!.nonce, signature: a!.signature }));
    await assert.rejects(run(fx, made, { tamper: { skipStateCheck: true, approvals: replayed } }), /NotApprovedByAll/);
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
  });

  test("a partner enclave whose measurement is not the one the terms pin is refused by the compute enclave", async () => {
    const loaded = load(fx, exampleFile());
    const nodes = fx.c.nodes.slice(0, 2).map((n, i) => ({ ...n, name: loaded.file.parties[i]!.name }));
    // The bank's terms pin another measurement: its (real) enclave no longer matches.
    const made = await created(fx, loaded);
    const terms = structuredClone(made.terms);
    terms.parties[1]!.measurement = keccak256(toHex("another enclave build"));
    const { createOnChain, approveAsParty } = await import("../../src/sdk/collab/run.ts");
    const { termsHash } = await import("../../src/protocol/collaboration.ts");
    const { collaborationId } = await createOnChain(fx.c.net, fx.c.network.requester, terms);
    for (const n of nodes) await approveAsParty(fx.c.net, n, collaborationId, terms, termsHash(terms));
    await assert.rejects(run(fx, { ...made, collaborationId, terms, termsHash: termsHash(terms) }), (e) => {
      refused("COLLAB_PEER_REFUSED", "retailer")(e);
      assert.match((e as Error).message, /party 1/);
      return true;
    });
  });

  test("a compute enclave whose measurement is not the pinned one is refused by the partner before it reads its data", async () => {
    const made = await created(fx, load(fx, exampleFile()));
    const terms = structuredClone(made.terms);
    terms.parties[0]!.measurement = keccak256(toHex("a rogue compute build"));
    const { createOnChain, approveAsParty } = await import("../../src/sdk/collab/run.ts");
    const { termsHash } = await import("../../src/protocol/collaboration.ts");
    const { collaborationId } = await createOnChain(fx.c.net, fx.c.network.requester, terms);
    for (const n of made.nodes) await approveAsParty(fx.c.net, n, collaborationId, terms, termsHash(terms));
    await assert.rejects(run(fx, { ...made, collaborationId, terms, termsHash: termsHash(terms) }), refused("COLLAB_PEER_REFUSED", "bank"));
  });

  test("an enclave that is not the introduced partner's is refused on the TLS session by its attested key: the compute enclave reads no row from it", async () => {
    const made = await created(fx, load(fx, exampleFile()));
    // The bank's host introduces the bank's enclave (its evidence checks out) but runs the job on another attested enclave.
    await assert.rejects(run(fx, made, { tamper: { impostor: { party: 1, enclave: fx.c.network.enclaves[2]! } } }), (e) => {
      refused("COLLAB_PEER_REFUSED", "retailer")(e);
      assert.match((e as Error).message, /TLS key that no expected party's enclave has/);
      return true;
    });
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
  });

  test("a recipient key that is not the one the terms pin is refused: the host cannot redirect the result", async () => {
    const made = await created(fx, load(fx, exampleFile()));
    const rogue = await generateHpkeKeyPair();
    await assert.rejects(run(fx, made, { tamper: { recipientKey: rogue.publicKey } }), refused("COLLAB_RECIPIENT_PIN_MISMATCH", "retailer"));
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
  });

  test("maxRuns: a collaboration that may run once runs once; the compute enclave refuses a run id past it", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => (f.maxRuns = 1))));
    await run(fx, made);
    await assert.rejects(run(fx, made), refused("COLLAB_MAX_RUNS"));
    await assert.rejects(run(fx, made, { tamper: { skipStateCheck: true } }), refused("COLLAB_TERMS_INVALID"));
  });

  test("differential privacy: noised integer aggregates, epsilon recorded on chain, a run past the budget refused before the query runs", async () => {
    const made = await created(
      fx,
      load(
        fx,
        exampleFile((f) => {
          f.query = "SELECT p.category, COUNT(*) AS n, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category";
          f.policy = { identity: "customer_id", minGroupSize: 5, dp: { epsilon: 1.5, budget: 3, bounds: { amount: [0, 300] } } };
        }),
      ),
    );
    const first = await run(fx, made);
    assert.equal(first.result!.epsilonSpent, "1.5");
    assert.deepEqual(first.result!.noised, ["n", "total"]);
    for (const row of first.result!.rows) assert.ok(Number.isInteger(row[1]) && Number.isInteger(row[2]));
    await run(fx, made);
    assert.equal((await readCollaboration(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).dpSpent, 3_000_000n);
    await assert.rejects(run(fx, made), refused("DP_BUDGET_EXCEEDED"));
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 2);
  });
});
