/**
 * Pipelines: the TypeScript digest and id equal the contract's; runs anchored
 * in a cursor chain by either candidate (failover); candidates changed and the
 * pipeline retired by the owner; every revert with its custom error. Gas per
 * write is printed and bounded (docs/pipelines.md).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { zeroAddress, zeroHash } from "viem";
import { getContractEvents, readContract } from "viem/actions";
import { pipelinesAbi } from "../../src/chain/abi/Pipelines.ts";
import { anchorPipelineRun } from "../../src/chain/actions/anchor-pipeline-run.ts";
import { readPipeline, readPipelineRuns } from "../../src/chain/actions/read-pipeline.ts";
import { registerPipeline, requestPipelineRun, retirePipeline, setPipelineCandidate } from "../../src/chain/actions/register-pipeline.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { pipelineId, pipelineRunDigest } from "../../src/protocol/pipelines.ts";
import { newEnclave, randomDigest, register, rejectsWith } from "./fixture.ts";
import { anchor, makeAnchor, makeRegistration, registered, signAnchor, startPipelinesFixture, type PipelinesFixture } from "./pipelines-fixture.ts";

function record(t: { diagnostic(message: string): void }, name: string, gas: bigint, ceiling: bigint): void {
  t.diagnostic(`${name}: ${gas} gas`);
  assert.ok(gas <= ceiling, `${name} used ${gas} gas, more than ${ceiling}`);
}

describe("Pipelines", () => {
  let p: PipelinesFixture;
  before(async () => {
    p = await startPipelinesFixture();
  });
  after(() => p.f.close());

  test("deploy", (t) => record(t, "deploy", p.deployGas, 1_500_000n));

  test("the TypeScript run digest and id equal the contract's", async () => {
    const { pipelineId: id, salt, registration } = await registered(p);
    assert.equal(id, pipelineId(BigInt(p.f.chain.chainId), p.contract, p.owner.account.address, salt));
    const run = makeAnchor();
    const onChain = await readContract(p.f.reader, { address: p.contract, abi: pipelinesAbi, functionName: "runDigest", args: [id, run] });
    assert.equal(onChain, pipelineRunDigest(p.domain, id, registration.pipelineDigest, run));
  });

  test("runs chain their cursors; the second candidate takes over; the owner lists the runs", async (t) => {
    const created = await registered(p);
    record(t, "registerPipeline (2 candidates)", created.gasUsed, 160_000n);
    const id = created.pipelineId;
    const digest = created.registration.pipelineDigest;
    const first = makeAnchor(zeroHash);
    record(t, "recordRun (first)", (await anchor(p, id, digest, first)).gasUsed, 110_000n);
    const second = makeAnchor(first.cursorAfter);
    record(t, "recordRun (next, other candidate)", (await anchor(p, id, digest, second, p.candidates[1])).gasUsed, 90_000n);

    const state = await readPipeline(p.f.reader, p.contract, id);
    assert.deepEqual({ ...state }, { pipelineId: id, exists: true, owner: p.owner.account.address, runs: 2, retired: false, requests: 0, pipelineDigest: digest, cursor: second.cursorAfter });
    const runs = await readPipelineRuns(p.f.reader, p.contract, id);
    assert.deepEqual(
      runs.map(({ blockNumber: _b, transactionHash: _t, ...r }) => r),
      [
        { ...first, run: 1, enclave: p.candidates[0]!.address },
        { ...second, run: 2, enclave: p.candidates[1]!.address },
      ],
    );
  });

  test("the owner adds and removes candidates and retires the pipeline", async (t) => {
    const { pipelineId: id, registration } = await registered(p, { candidates: [p.candidates[0]!.address] });
    await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(), p.outsider), "NotACandidate");
    record(t, "setCandidate (add)", (await setPipelineCandidate(p.owner, p.contract, id, p.outsider.address, true)).gasUsed, 60_000n);
    const run = makeAnchor();
    await anchor(p, id, registration.pipelineDigest, run, p.outsider);
    record(t, "setCandidate (remove)", (await setPipelineCandidate(p.owner, p.contract, id, p.outsider.address, false)).gasUsed, 40_000n);
    await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(run.cursorAfter), p.outsider), "NotACandidate");
    record(t, "retirePipeline", (await retirePipeline(p.owner, p.contract, id)).gasUsed, 40_000n);
    assert.equal((await readPipeline(p.f.reader, p.contract, id)).retired, true);
    await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(run.cursorAfter)), "PipelineIsRetired");
  });

  test("the owner requests runs: numbered, in the event, beside the runs and cursor in the same slot", async (t) => {
    const { pipelineId: id, registration } = await registered(p, { schedule: "" });
    const first = await requestPipelineRun(p.owner, p.contract, id);
    record(t, "requestRun (first)", first.gasUsed, 40_000n);
    const run = makeAnchor();
    await anchor(p, id, registration.pipelineDigest, run);
    const second = await requestPipelineRun(p.owner, p.contract, id);
    record(t, "requestRun (next)", second.gasUsed, 35_000n);
    assert.deepEqual([first.request, second.request], [1, 2]);
    const [event] = await getContractEvents(p.f.reader, { address: p.contract, abi: pipelinesAbi, eventName: "RunRequested", args: { pipelineId: id }, fromBlock: second.blockNumber, strict: true });
    assert.deepEqual(event?.args, { pipelineId: id, requester: p.owner.account.address, request: 2 });
    assert.equal(event.logIndex, second.logIndex);
    const state = await readPipeline(p.f.reader, p.contract, id);
    assert.deepEqual({ owner: state.owner, runs: state.runs, requests: state.requests, retired: state.retired, cursor: state.cursor }, { owner: p.owner.account.address, runs: 1, requests: 2, retired: false, cursor: run.cursorAfter });
  });

  describe("reverts", () => {
    const invalid: [string, (p: PipelinesFixture) => Parameters<typeof makeRegistration>[1], RegExp][] = [
      ["a zero digest", () => ({ pipelineDigest: zeroHash }), /pipelineDigest is zero/],
      ["no candidate", () => ({ candidates: [] }), /no candidate/],
      ["33 candidates", () => ({ candidates: Array.from({ length: 33 }, () => newEnclave().address) }), /at most 32/],
      ["a zero candidate", () => ({ candidates: [zeroAddress] }), /zero address/],
      ["a candidate twice", (p) => ({ candidates: [p.candidates[0]!.address, p.candidates[0]!.address] }), /appears twice/],
    ];
    for (const [what, overrides, reason] of invalid) {
      test(`InvalidPipeline: ${what}`, async () => {
        const err = await rejectsWith(registerPipeline(p.owner, p.contract, makeRegistration(p, overrides(p))), "InvalidPipeline");
        assert.match(String(err.args.reason), reason);
      });
    }

    test("PipelineExists: the same owner and salt twice", async () => {
      const { pipelineId: id, salt } = await registered(p);
      const err = await rejectsWith(registerPipeline(p.owner, p.contract, makeRegistration(p), salt), "PipelineExists");
      assert.equal(err.args.pipelineId, id);
    });

    test("UnknownPipeline: set, retire, record", async () => {
      await rejectsWith(setPipelineCandidate(p.owner, p.contract, 5n, p.outsider.address, true), "UnknownPipeline");
      await rejectsWith(retirePipeline(p.owner, p.contract, 5n), "UnknownPipeline");
      await rejectsWith(anchor(p, 5n, zeroHash, makeAnchor()), "UnknownPipeline");
    });

    test("NotPipelineOwner: set and retire by another account", async () => {
      const { pipelineId: id } = await registered(p);
      const err = await rejectsWith(setPipelineCandidate(p.relayer, p.contract, id, p.outsider.address, true), "NotPipelineOwner");
      assert.deepEqual(err.args, { pipelineId: id, caller: p.relayer.account.address, owner: p.owner.account.address });
      await rejectsWith(retirePipeline(p.relayer, p.contract, id), "NotPipelineOwner");
    });

    test("requestRun: UnknownPipeline, NotPipelineOwner, PipelineIsRetired", async () => {
      await rejectsWith(requestPipelineRun(p.owner, p.contract, 5n), "UnknownPipeline");
      const { pipelineId: id } = await registered(p);
      const err = await rejectsWith(requestPipelineRun(p.relayer, p.contract, id), "NotPipelineOwner");
      assert.deepEqual(err.args, { pipelineId: id, caller: p.relayer.account.address, owner: p.owner.account.address });
      await retirePipeline(p.owner, p.contract, id);
      await rejectsWith(requestPipelineRun(p.owner, p.contract, id), "PipelineIsRetired");
      assert.equal((await readPipeline(p.f.reader, p.contract, id)).requests, 0, "no refused request was counted");
    });

    test("PipelineIsRetired: set and retire after retirement", async () => {
      const { pipelineId: id } = await registered(p);
      await retirePipeline(p.owner, p.contract, id);
      await rejectsWith(setPipelineCandidate(p.owner, p.contract, id, p.outsider.address, true), "PipelineIsRetired");
      await rejectsWith(retirePipeline(p.owner, p.contract, id), "PipelineIsRetired");
    });

    test("InvalidPipeline and CandidateUnchanged in setCandidate", async () => {
      const { pipelineId: id } = await registered(p);
      await rejectsWith(setPipelineCandidate(p.owner, p.contract, id, zeroAddress, true), "InvalidPipeline");
      await rejectsWith(setPipelineCandidate(p.owner, p.contract, id, p.candidates[0]!.address, true), "CandidateUnchanged");
      await rejectsWith(setPipelineCandidate(p.owner, p.contract, id, p.outsider.address, false), "CandidateUnchanged");
    });

    test("RunAlreadyAnchored: one run id anchored once", async () => {
      const { pipelineId: id, registration } = await registered(p);
      const run = makeAnchor();
      await anchor(p, id, registration.pipelineDigest, run);
      const again = { ...run, cursorBefore: run.cursorAfter };
      const err = await rejectsWith(anchor(p, id, registration.pipelineDigest, again, p.candidates[1]), "RunAlreadyAnchored");
      assert.deepEqual(err.args, { pipelineId: id, runId: run.runId });
    });

    test("CursorMismatch: a run from an old cursor (a rollback) or a made-up one", async () => {
      const { pipelineId: id, registration } = await registered(p);
      const first = makeAnchor();
      await anchor(p, id, registration.pipelineDigest, first);
      await anchor(p, id, registration.pipelineDigest, makeAnchor(first.cursorAfter));
      const rollback = makeAnchor(first.cursorAfter);
      const err = await rejectsWith(anchor(p, id, registration.pipelineDigest, rollback), "CursorMismatch");
      assert.equal(err.args.cursorBefore, first.cursorAfter);
      await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(randomDigest())), "CursorMismatch");
    });

    test("ProvenanceMissing", async () => {
      const { pipelineId: id, registration } = await registered(p);
      await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(zeroHash, { provenanceDigest: zeroHash })), "ProvenanceMissing");
    });

    test("NotACandidate: signed over another pipeline digest, counts or by a stranger", async () => {
      const { pipelineId: id, registration } = await registered(p);
      await rejectsWith(anchor(p, id, randomDigest(), makeAnchor()), "NotACandidate");
      const run = makeAnchor();
      const signature = await signAnchor(p, p.candidates[0]!, id, registration.pipelineDigest, run);
      await rejectsWith(anchorPipelineRun(p.relayer, p.contract, id, { ...run, recordsWritten: run.recordsWritten + 1n }, signature), "NotACandidate");
      const stranger = newEnclave();
      const err = await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(), stranger), "NotACandidate");
      assert.equal(err.args.enclave, stranger.address);
    });

    test("EnclaveNotActive: a candidate revoked from the registry", async () => {
      const enclave = newEnclave();
      await register(p.f, enclave, p.f.chain.accounts.operators[0]!.address);
      const { pipelineId: id, registration } = await registered(p, { candidates: [enclave.address] });
      const first = makeAnchor();
      await anchor(p, id, registration.pipelineDigest, first, enclave);
      await revokeEnclave(p.f.attester, p.f.deployment.registry, enclave.address);
      const err = await rejectsWith(anchor(p, id, registration.pipelineDigest, makeAnchor(first.cursorAfter), enclave), "EnclaveNotActive");
      assert.equal(err.args.enclave, enclave.address);
    });
  });
});
