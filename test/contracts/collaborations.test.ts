/**
 * Collaborations: the lifecycle on the in-process chain (create, relayed approvals, runs by the compute
 * enclave, withdraw and approve again), off-chain digests equal to the contract's, and the gas of each step.
 * Revert paths: collaborations-reverts.test.ts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { pad, parseEventLogs, toHex, zeroAddress, zeroHash } from "viem";
import { readContract } from "viem/actions";
import { collaborationsAbi } from "../../src/chain/abi/Collaborations.ts";
import { approveCollaboration } from "../../src/chain/actions/approve-collaboration.ts";
import { readCollaboration, readPartyState } from "../../src/chain/actions/read-collaboration.ts";
import { CollaborationReadError, readCollaborationTerms } from "../../src/chain/actions/read-collaboration-terms.ts";
import { readRuns } from "../../src/chain/actions/read-runs.ts";
import { createReaderClient } from "../../src/chain/clients.ts";
import { recordRun } from "../../src/chain/actions/record-run.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { withdrawApprovalBySig } from "../../src/chain/actions/withdraw-approval-by-sig.ts";
import { approvalDigest, collaborationId, epsilonToFixed, manifestRoleId, runDigest, termsHash, withdrawalDigest } from "../../src/protocol/collaboration.ts";
import { DOMAIN } from "../../src/protocol/domains.ts";
import { randomDigest } from "./fixture.ts";
import { SQL, approvalOf, approveAll, create, makeReport, makeTerms, party, signApproval, signRun, signWithdrawal, startCollabFixture, type CollabFixture } from "./collaborations-fixture.ts";

describe("Collaborations lifecycle", () => {
  let c: CollabFixture;
  before(async () => {
    c = await startCollabFixture();
  });
  after(() => c.f.close());

  test("create stores what runs need, emits the full terms, and the ids and hashes match the off-chain ones", async () => {
    const terms = makeTerms(c);
    const tx = await create(c, terms);
    assert.equal(tx.collaborationId, collaborationId(BigInt(c.f.chain.chainId), c.contract, c.relayer.account.address, tx.salt));
    assert.equal(tx.termsHash, termsHash(terms));
    const [event] = parseEventLogs({ abi: collaborationsAbi, logs: tx.receipt.logs, eventName: "CollaborationCreated" });
    assert.equal(event?.args.terms.queryText, SQL);
    assert.equal(event?.args.creator, c.relayer.account.address);
    assert.deepEqual(event?.args.terms.parties.map((p) => p.datasetsDigest), terms.parties.map((p) => p.datasetsDigest));
    const state = await readCollaboration(c.f.reader, c.contract, tx.collaborationId);
    assert.deepEqual(state, {
      collaborationId: tx.collaborationId,
      exists: true,
      maxRuns: 3,
      runs: 0,
      dpBudget: 2_500_000n,
      dpSpent: 0n,
      partyCount: 2,
      allowSimulated: true,
      approvals: 0,
      approved: false,
      computeOperator: c.accounts[0]!.address,
      computeMeasurement: terms.parties[0]!.measurement,
      termsHash: termsHash(terms),
      queryDigest: terms.queryDigest,
      policyDigest: terms.policyDigest,
    });
    assert.deepEqual(await readPartyState(c.f.reader, c.contract, tx.collaborationId, c.accounts[1]!.address), { index: 1, nonce: 0n });
    assert.deepEqual(await readPartyState(c.f.reader, c.contract, tx.collaborationId, c.f.requester.account.address), { index: null, nonce: 0n });
    assert.equal((await readCollaboration(c.f.reader, c.contract, 12345n)).exists, false);
  });

  test("the approval and run digests computed off chain are the contract's", async () => {
    const terms = makeTerms(c);
    const { collaborationId: id, termsHash: th } = await create(c, terms);
    const onChainApproval = await readContract(c.f.reader, { address: c.contract, abi: collaborationsAbi, functionName: "approvalDigest", args: [id, 7n] });
    assert.equal(onChainApproval, approvalDigest(c.domain, { ...approvalOf(id, th, terms), nonce: 7n }));
    const onChainWithdrawal = await readContract(c.f.reader, { address: c.contract, abi: collaborationsAbi, functionName: "withdrawalDigest", args: [id, 3n] });
    assert.equal(onChainWithdrawal, withdrawalDigest(c.domain, id, 3n));
    const tag = await readContract(c.f.reader, { address: c.contract, abi: collaborationsAbi, functionName: "QUERY_TAG" });
    assert.equal(tag, toHex(DOMAIN.collabQuery), "the contract's query tag is the protocol's");
    const report = makeReport(1, c.enclave.address, { rowsDelivered: 2n ** 40n });
    const onChainRun = await readContract(c.f.reader, { address: c.contract, abi: collaborationsAbi, functionName: "runDigest", args: [id, report] });
    assert.equal(onChainRun, runDigest(c.domain, id, th, report));
  });

  test("parties approve through a relayer, the enclave's runs are recorded, a withdrawal stops runs until a new approval; gas", async (t) => {
    const terms = makeTerms(c);
    const created = await create(c, terms);
    const id = created.collaborationId;
    const of = approvalOf(id, created.termsHash, terms);
    const [first, second] = await approveAll(c, of, c.accounts.slice(0, 2));
    const approved = parseEventLogs({ abi: collaborationsAbi, logs: first!.receipt.logs, eventName: "Approved" })[0]!.args;
    assert.deepEqual(approved, { collaborationId: id, party: c.accounts[0]!.address, nonce: 0n, relayer: c.relayer.account.address });
    assert.equal(parseEventLogs({ abi: collaborationsAbi, logs: first!.receipt.logs, eventName: "FullyApproved" }).length, 0);
    assert.equal(parseEventLogs({ abi: collaborationsAbi, logs: second!.receipt.logs, eventName: "FullyApproved" }).length, 1);
    assert.equal((await readCollaboration(c.f.reader, c.contract, id)).approved, true);

    const report = makeReport(1, c.enclave.address, { epsilonSpent: epsilonToFixed("1.25") });
    const run = await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, created.termsHash, report));
    const [recorded] = parseEventLogs({ abi: collaborationsAbi, logs: run.receipt.logs, eventName: "RunRecorded" });
    assert.deepEqual(recorded?.args, { collaborationId: id, ...report, dpSpent: 1_250_000n });
    let state = await readCollaboration(c.f.reader, c.contract, id);
    assert.equal(state.runs, 1);
    assert.equal(state.dpSpent, 1_250_000n);

    const withdrawn = await withdrawApproval(c.writers[1]!, c.contract, id);
    const [w] = parseEventLogs({ abi: collaborationsAbi, logs: withdrawn.receipt.logs, eventName: "ApprovalWithdrawn" });
    assert.deepEqual(w?.args, { collaborationId: id, party: c.accounts[1]!.address, nonce: 2n, wasApproved: true });
    state = await readCollaboration(c.f.reader, c.contract, id);
    assert.equal(state.approvals, 0b01);
    assert.equal(state.approved, false);

    const again = await approveCollaboration(c.relayer, c.contract, await signApproval(c, c.accounts[1]!, of));
    assert.equal(parseEventLogs({ abi: collaborationsAbi, logs: again.receipt.logs, eventName: "Approved" })[0]?.args.nonce, 2n);
    const report2 = makeReport(2, c.enclave.address, { epsilonSpent: epsilonToFixed("1.25") });
    const run2 = await recordRun(c.relayer, c.contract, id, report2, await signRun(c, c.enclave.account, id, created.termsHash, report2));
    state = await readCollaboration(c.f.reader, c.contract, id);
    assert.equal(state.runs, 2);
    assert.equal(state.dpSpent, 2_500_000n, "the whole budget is spent");

    t.diagnostic(
      `gas: deploy ${c.deployGas}; create (2 parties, SQL text of ${SQL.length} bytes in calldata) ${created.gasUsed}; ` +
        `approve ${first!.gasUsed} (first) / ${second!.gasUsed} (completes the set); withdraw ${withdrawn.gasUsed}; ` +
        `recordRun ${run.gasUsed} (first) / ${run2.gasUsed} (second)`,
    );
    assert.ok(created.gasUsed < 400_000n, `create ${created.gasUsed}`);
    assert.ok(first!.gasUsed < 80_000n && second!.gasUsed < 80_000n, `approve ${first!.gasUsed}, ${second!.gasUsed}`);
    assert.ok(run.gasUsed < 100_000n, `recordRun ${run.gasUsed}`);
  });

  test("three parties, a manifest role for a partner, a query published only by CID, no DP, any compute operator", async (t) => {
    const terms = makeTerms(c, { queryText: "", queryCid: "bafkreiquery", dpBudget: 0n }, 3);
    terms.parties[0] = party(c.accounts[0]!.address);
    terms.parties[2] = party(c.accounts[2]!.address, { measurement: zeroHash, manifestDigest: randomDigest(), manifestRole: manifestRoleId("clean-room-partner") });
    const created = await create(c, terms);
    const id = created.collaborationId;
    assert.equal((await readCollaboration(c.f.reader, c.contract, id)).computeOperator, zeroAddress);
    await approveAll(c, approvalOf(id, created.termsHash, terms), c.accounts.slice(0, 3));
    const report = makeReport(1, c.enclave.address, { epsilonSpent: 0n, rowsDelivered: 0n, rowsSuppressed: 7n });
    const run = await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, created.termsHash, report));
    const state = await readCollaboration(c.f.reader, c.contract, id);
    assert.equal(state.runs, 1);
    assert.equal(state.dpSpent, 0n);
    t.diagnostic(`gas: create (3 parties, query by CID) ${created.gasUsed}; recordRun without DP ${run.gasUsed}`);
  });

  test("a withdrawal before any relay voids the signed approval; the party signs again at its new nonce", async () => {
    const terms = makeTerms(c);
    const created = await create(c, terms);
    const of = approvalOf(created.collaborationId, created.termsHash, terms);
    const signed = await signApproval(c, c.accounts[0]!, of);
    const tx = await withdrawApproval(c.writers[0]!, c.contract, created.collaborationId);
    assert.equal(parseEventLogs({ abi: collaborationsAbi, logs: tx.receipt.logs, eventName: "ApprovalWithdrawn" })[0]?.args.wasApproved, false);
    assert.deepEqual(await readPartyState(c.f.reader, c.contract, created.collaborationId, c.accounts[0]!.address), { index: 0, nonce: 1n });
    await approveCollaboration(c.relayer, c.contract, await signApproval(c, c.accounts[0]!, of));
    assert.equal((await readCollaboration(c.f.reader, c.contract, created.collaborationId)).approvals, 1);
    assert.equal(signed.nonce, 0n);
  });

  test("a party withdraws through a relayer with a signed Withdrawal, and the runs stop", async (t) => {
    const terms = makeTerms(c);
    const created = await create(c, terms);
    const id = created.collaborationId;
    await approveAll(c, approvalOf(id, created.termsHash, terms), c.accounts.slice(0, 2));
    const tx = await withdrawApprovalBySig(c.relayer, c.contract, await signWithdrawal(c, c.accounts[0]!, id));
    const [w] = parseEventLogs({ abi: collaborationsAbi, logs: tx.receipt.logs, eventName: "ApprovalWithdrawn" });
    assert.deepEqual(w?.args, { collaborationId: id, party: c.accounts[0]!.address, nonce: 2n, wasApproved: true });
    const state = await readCollaboration(c.f.reader, c.contract, id);
    assert.equal(state.approvals, 0b10);
    t.diagnostic(`gas: withdrawApprovalBySig ${tx.gasUsed}`);
  });

  test("the terms and runs read back from events; an endpoint that hands back another collaboration's terms is caught", async () => {
    const terms = makeTerms(c, {}, 3);
    const created = await create(c, terms);
    const id = created.collaborationId;
    const read = await readCollaborationTerms(c.f.reader, c.contract, id);
    assert.deepEqual(read.terms, terms);
    assert.equal(read.creator, c.relayer.account.address);
    assert.equal(read.blockNumber, created.receipt.blockNumber);
    await assert.rejects(readCollaborationTerms(c.f.reader, c.contract, 5n), (err: unknown) => err instanceof CollaborationReadError && err.code === "COLLABORATION_NOT_FOUND");

    await approveAll(c, approvalOf(id, created.termsHash, terms), c.accounts.slice(0, 3));
    const reports = [makeReport(1, c.enclave.address), makeReport(2, c.enclave.address, { epsilonSpent: 500_000n })];
    for (const r of reports) await recordRun(c.relayer, c.contract, id, r, await signRun(c, c.enclave.account, id, created.termsHash, r));
    const runs = await readRuns(c.f.reader, c.contract, id);
    assert.deepEqual(runs.map(({ blockNumber: _b, transactionHash: _t, ...run }) => run), [
      { ...reports[0]!, dpSpent: 1_000_000n },
      { ...reports[1]!, dpSpent: 1_500_000n },
    ]);
    assert.deepEqual(await readRuns(c.f.reader, c.contract, created.collaborationId + 1n), []);

    // A lying endpoint: asked for the logs of `id`, it returns those of another collaboration relabelled as `id`.
    const other = await create(c, makeTerms(c));
    const idTopic = pad(toHex(id), { size: 32 });
    const otherTopic = pad(toHex(other.collaborationId), { size: 32 });
    const provider = c.f.chain.provider;
    const lying = {
      async request(args: { method: string; params?: unknown }) {
        if (args.method !== "eth_getLogs") return provider.request(args as never);
        const [filter] = args.params as [{ topics: (string | null)[] }];
        const logs = (await provider.request({ method: "eth_getLogs", params: [{ ...filter, topics: [filter.topics[0], otherTopic] }] } as never)) as { topics: string[] }[];
        return logs.map((log) => ({ ...log, topics: [log.topics[0], idTopic, ...log.topics.slice(2)] }));
      },
    };
    const liar = createReaderClient({ endpoint: { provider: lying as typeof provider }, chain: c.f.chain.chain });
    await assert.rejects(readCollaborationTerms(liar, c.contract, id), (err: unknown) => err instanceof CollaborationReadError && err.code === "COLLABORATION_TERMS_MISMATCH");
  });
});
