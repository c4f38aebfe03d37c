/**
 * Standing approvals proved inside the enclaves: a party seals JSON-RPC endpoints it trusts with its datasets
 * (the terms' datasetsDigest binds them); its enclave proves the collaboration's state from Collaborations'
 * storage at a block a quorum of them agrees on, before it reads a row. A withdrawal the host hides (it replays
 * the approvals from before it and skips its own check) is refused inside that party's enclave; a host that
 * re-seals the descriptors without the endpoints is refused too. Without endpoints nothing changes (the
 * withdrawal is then stopped at recordRun: two-parties.test.ts).
 *
 * Release after record: a compute party that names endpoints has its enclave keep the result inside until it has
 * proved there that the run was recorded with it; a host that does not record gets nothing, and a host that
 * computes one pending run twice gets the one result the chain recorded.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { getBlock, getBlockNumber } from "viem/actions";
import { readApprovals } from "../../src/chain/actions/read-approvals.ts";
import { readRuns } from "../../src/chain/actions/read-runs.ts";
import type { Hex } from "viem";
import type { JobOutcome } from "../../src/enclave/call-gate.ts";
import { computePredicate, recordAndPublish } from "../../src/host/collab-peer.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { collabDatasetsDigest } from "../../src/protocol/collab-run.ts";
import { CollabRefusedError } from "../../src/sdk/collab/errors.ts";
import type { CollabStep } from "../../src/sdk/collab/run.ts";
import { created, exampleFile, load, run, startFixture, type CollabFixture } from "./fixture.ts";

let fx: CollabFixture;
let rpc: ChainRpcServer;
before(async () => {
  fx = await startFixture(["retailer", "bank"]);
  rpc = await startChainRpcServer({ provider: fx.c.network.chain.provider });
});
after(async () => {
  await rpc.close();
  await fx.close();
});

/** The example, with the bank (the partner) naming the chain endpoint; the compute party names none. */
const bankWithEndpoints = () =>
  exampleFile((f) => {
    (f.parties as Record<string, unknown>[])[1]!.chainView = { endpoints: [rpc.url], quorum: 1, finalityDepth: 0 };
    f.limits = { partnerTimeoutMs: 3_000 };
  });

const refusedBy = (code: string, party: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CollabRefusedError, `expected the enclave's typed refusal, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.party, party);
  assert.match(e.message, message);
  return true;
};

describe("clean room, approvals proved in the enclave", () => {
  test("the bank's enclave proves the approvals at a block its endpoint chose and records it; the endpoints are bound by the terms", async () => {
    const loaded = load(fx, bankWithEndpoints());
    const bank = loaded.file.parties[1]!;
    const made = await created(fx, loaded);
    assert.notEqual(made.terms.parties[1]!.datasetsDigest, collabDatasetsDigest({ datasets: bank.datasets }), "the endpoints are part of the bank's datasetsDigest");
    assert.equal(made.terms.parties[0]!.datasetsDigest, collabDatasetsDigest({ datasets: loaded.file.parties[0]!.datasets }));
    const steps: CollabStep[] = [];
    const head = await getBlockNumber(fx.c.net.reader);
    const out = await run(fx, made, { onStep: (s) => steps.push(s) });
    assert.ok(out.result!.rows.length > 0);
    const sealed = steps.find((s) => s.step === "partner-sealed");
    assert.ok(sealed?.step === "partner-sealed" && sealed.provedAt, "the bank's provenance names the block it proved at");
    assert.equal(sealed.provedAt.chosenBy, "party-endpoints");
    assert.equal(BigInt(sealed.provedAt.number), head, "the endpoint's head (finality depth 0) at the time of the run");
    assert.equal((await getBlock(fx.c.net.reader, { blockNumber: head })).hash, sealed.provedAt.hash);
    assert.equal(out.releasedAt, undefined, "the compute party names no endpoints: the release is not proved (as before)");
    assert.ok(out.checks.some((c) => c.startsWith("release not proved")), out.checks.join("\n"));
  });

  test("a withdrawal the host hides (old approvals replayed, its own check skipped) is refused in the bank's enclave before a row is read", async () => {
    const made = await created(fx, load(fx, bankWithEndpoints()));
    const earlier = await readApprovals(fx.c.net.reader, fx.c.net.contract, made.collaborationId, made.terms.parties.map((p) => p.account));
    await withdrawApproval(made.nodes[1]!.writer, fx.c.net.contract, made.collaborationId);
    const withdrawnAt = await getBlockNumber(fx.c.net.reader);
    const replayed = earlier.map((a) => ({ nonce: a!.nonce, signature: a!.signature }));
    const carriedBefore = fx.carried.length;
    const steps: CollabStep[] = [];
    await assert.rejects(
      run(fx, made, { onStep: (s) => steps.push(s), tamper: { skipStateCheck: true, approvals: replayed } }),
      refusedBy("COLLAB_NOT_APPROVED", "bank", new RegExp(`party 1 \\(bank\\) withdrew its approval: it does not stand at block ${withdrawnAt}`)),
    );
    assert.equal(steps.filter((s) => s.step === "partner-sealed").length, 0, "the bank sent nothing");
    // The bank's enclave never connected to the compute enclave: no relayed byte reached its listener.
    assert.equal(fx.carried.slice(carriedBefore).filter((c) => c.destination.includes("->")).length, 0);
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
    // Let the compute enclave, which waited for the bank, give up before the next run on its node.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
  });

  test("a host that re-seals the bank's descriptors without its endpoints is refused: the terms bind them", async () => {
    const loaded = load(fx, bankWithEndpoints());
    const made = await created(fx, loaded);
    await assert.rejects(
      run(fx, made, { tamper: { sealedAs: { party: 1, datasets: { datasets: loaded.file.parties[1]!.datasets } } } }),
      refusedBy("COLLAB_DATASETS_MISMATCH", "bank", /chain endpoints/),
    );
    await new Promise((resolve) => setTimeout(resolve, 3_500));
  });

  test("endpoints that do not answer stop the run in the enclave that named them", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => {
      (f.parties as Record<string, unknown>[])[0]!.chainView = { endpoints: ["http://127.0.0.1:9/"], quorum: 1, finalityDepth: 0 };
    })));
    await assert.rejects(run(fx, made), refusedBy("COLLAB_CHAIN_UNPROVEN", "retailer", /could not be proved from this party's chain endpoints/));
  });
});

describe("clean room, release after record", () => {
  /** The example, with the retailer (the compute party and recipient) naming the chain endpoint. */
  const retailerWithEndpoints = () =>
    exampleFile((f) => {
      (f.parties as Record<string, unknown>[])[0]!.chainView = { endpoints: [rpc.url], quorum: 1, finalityDepth: 0 };
      f.limits = { partnerTimeoutMs: 3_000 };
    });

  test("the compute enclave withholds the sealed result from its host until it has proved the run recorded, then releases it", async () => {
    const made = await created(fx, load(fx, retailerWithEndpoints()));
    let computed: JobOutcome | undefined;
    const out = await run(fx, made, { tamper: { onComputed: (o) => (computed = o) } });
    const output = computed!.outputs[0]!;
    assert.equal(output.withheld, true);
    assert.equal(output.bytes.length, 0, "the host holds no byte of the result before the record");
    assert.ok(out.result!.rows.length > 0, "delivered to the recipient once released");
    const [recorded] = await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId);
    assert.equal(recorded!.resultDigest, output.digest);
    assert.ok(out.releasedAt && BigInt(out.releasedAt.number) >= recorded!.blockNumber, "proved at a block that holds the record");
    assert.ok(out.checks.some((c) => c.startsWith(`released after the compute enclave proved the run recorded with this result at block ${out.releasedAt!.number}`)), out.checks.join("\n"));
    const predicate = computePredicate(computed!, made.nodes[0]!.enclave.identity.provenanceKey);
    assert.equal(predicate.release, "after-record-proved");
  });

  test("a host that does not record gets no delivery; one that computes the pending run twice gets only the recorded result", async () => {
    const made = await created(fx, load(fx, retailerWithEndpoints()));
    const enclave = made.nodes[0]!.enclave;
    const release = (digest: Hex) => enclave.releaseCollabResult({ chainId: fx.c.net.chainId, contract: fx.c.net.contract, collaborationId: made.collaborationId, runId: 1, resultDigest: digest });
    // First computation: the host skips recordRun and asks for the result at once.
    let first: JobOutcome | undefined;
    await assert.rejects(run(fx, made, { tamper: { onComputed: (o) => (first = o), skipRecord: true } }), refusedBy("COLLAB_RUN_PENDING", "retailer", /run 1 is not recorded at block \d+/));
    assert.equal(first!.outputs[0]!.bytes.length, 0);
    await assert.rejects(release(first!.outputs[0]!.digest), /COLLAB_RUN_PENDING/, "still held, still not released");
    // Second computation of the same pending run (run 1 again), recorded this time: delivered.
    const out = await run(fx, made);
    assert.equal(out.runId, 1);
    assert.ok(out.result!.rows.length > 0);
    const runs = await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId);
    assert.equal(runs.length, 1);
    assert.notEqual(runs[0]!.resultDigest, first!.outputs[0]!.digest);
    // The first result: the chain recorded another for run 1, so it is dropped, and stays dropped.
    await assert.rejects(release(first!.outputs[0]!.digest), /COLLAB_RUN_NOT_RECORDED: run 1 is recorded at block \d+ with another result/);
    await assert.rejects(release(first!.outputs[0]!.digest), /COLLAB_RUN_NOT_RECORDED: no result of run 1/);
    // The recorded one was released once: asking again gives nothing more.
    await assert.rejects(release(runs[0]!.resultDigest), /COLLAB_RUN_NOT_RECORDED: no result of run 1/);
  });

  test("two release requests for one recorded result, at once: one gets it, the other nothing", async () => {
    const made = await created(fx, load(fx, retailerWithEndpoints()));
    const node = made.nodes[0]!;
    let computed: JobOutcome | undefined;
    await assert.rejects(run(fx, made, { tamper: { onComputed: (o) => (computed = o), skipRecord: true } }), refusedBy("COLLAB_RUN_PENDING", "retailer", /run 1 is not recorded/));
    // The host records that result, then asks for it twice concurrently.
    const answers: PromiseSettledResult<unknown>[] = [];
    await recordAndPublish(node.writer, fx.c.net.store, {
      contract: fx.c.net.contract,
      collaborationId: made.collaborationId,
      runId: 1,
      signer: node.enclave.identity.signer,
      outcome: computed!,
      predicate: computePredicate(computed!, node.enclave.identity.provenanceKey),
      enclave: {
        releaseCollabResult: async (params) => {
          answers.push(...(await Promise.allSettled([node.enclave.releaseCollabResult(params), node.enclave.releaseCollabResult(params)])));
          const got = answers.find((a) => a.status === "fulfilled");
          if (!got) throw (answers[0] as PromiseRejectedResult).reason;
          return got.value as Awaited<ReturnType<typeof node.enclave.releaseCollabResult>>;
        },
      },
    });
    assert.deepEqual(answers.map((a) => a.status).sort(), ["fulfilled", "rejected"], "released exactly once");
    const refused = answers.find((a) => a.status === "rejected")!.reason as Error;
    assert.match(refused.message, /COLLAB_RUN_NOT_RECORDED: (the result of run 1 .* was released or dropped while its record was proved|no result of run 1)/);
  });
});
