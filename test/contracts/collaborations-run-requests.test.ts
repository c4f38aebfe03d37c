/** assignNode, requestRun, joinRun and reportRefusal (the network run of a collaboration): their events and every revert. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Hex } from "viem";
import { assignNode, joinRun, readRunEvents, reportRefusal, requestRun } from "../../src/chain/actions/collab-run-requests.ts";
import { collaborationsAbi } from "../../src/chain/abi/Collaborations.ts";
import { writeContractTransaction } from "../../src/chain/actions/send-transaction.ts";
import { recordRun } from "../../src/chain/actions/record-run.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { newEnclave, register, rejectsWith } from "./fixture.ts";
import { approvalOf, approveAll, create, makeReport, makeTerms, signRun, startCollabFixture, type CollabFixture } from "./collaborations-fixture.ts";

describe("Collaborations run requests", () => {
  let c: CollabFixture;
  before(async () => {
    c = await startCollabFixture();
  });
  after(() => c.f.close());

  async function approved(maxRuns = 3): Promise<{ id: bigint; th: Hex }> {
    const terms = makeTerms(c, { maxRuns });
    const created = await create(c, terms);
    await approveAll(c, approvalOf(created.collaborationId, created.termsHash, terms), c.accounts.slice(0, 2));
    return { id: created.collaborationId, th: created.termsHash };
  }

  /** Party 0 on the fixture's compute enclave, party 1 on a fresh enclave of its own operator. */
  async function assigned(maxRuns = 3) {
    const r = await approved(maxRuns);
    const partner = newEnclave();
    await register(c.f, partner, c.accounts[1]!.address);
    await assignNode(c.writers[0]!, c.contract, r.id, c.enclave.address, "bafkit0");
    const first = await assignNode(c.writers[1]!, c.contract, r.id, partner.address, "bafkit1");
    return { ...r, partner, assignGas: first.gasUsed };
  }

  test("a party assigns its node, requests a run, each node joins it: the events carry what the nodes follow", async (t) => {
    const { id, partner, assignGas } = await assigned();
    const requested = await requestRun(c.writers[1]!, c.contract, id);
    assert.equal(requested.runId, 1);
    const joined = await joinRun(c.writers[1]!, c.contract, id, 1, 1, "bafpeer1");
    await joinRun(c.writers[0]!, c.contract, id, 1, 0, "bafpeer0");
    t.diagnostic(`gas: assignNode ${assignGas}, requestRun ${requested.gasUsed}, joinRun ${joined.gasUsed} (7-character CIDs; a real one adds its calldata and log bytes)`);
    const events = await readRunEvents(c.relayer, c.contract, { fromBlock: 0n, toBlock: "latest", collaborationId: id });
    assert.deepEqual(events.assignments.map((a) => [a.party, a.enclave, a.kitCid]), [[0, c.enclave.address, "bafkit0"], [1, partner.address, "bafkit1"]]);
    assert.deepEqual(events.requests.map((r) => [r.runId, r.requester, r.blockHash]), [[1, c.accounts[1]!.address, requested.blockHash]]);
    assert.deepEqual(events.joins.map((j) => [j.runId, j.party, j.enclave, j.peerCid]), [[1, 1, partner.address, "bafpeer1"], [1, 0, c.enclave.address, "bafpeer0"]]);
  });

  test("assignNode: UnknownCollaboration, UnknownParty, EnclaveNotActive; a later assignment replaces the first", async () => {
    const { id } = await approved();
    await rejectsWith(assignNode(c.writers[0]!, c.contract, 99n, c.enclave.address, "x"), "UnknownCollaboration");
    await rejectsWith(assignNode(c.writers[2]!, c.contract, id, c.enclave.address, "x"), "UnknownParty");
    const unregistered = newEnclave();
    const err = await rejectsWith(assignNode(c.writers[0]!, c.contract, id, unregistered.address, "x"), "EnclaveNotActive");
    assert.equal(err.args.enclave, unregistered.address);
    const other = newEnclave();
    await register(c.f, other, c.accounts[0]!.address);
    await assignNode(c.writers[0]!, c.contract, id, other.address, "first");
    await assignNode(c.writers[0]!, c.contract, id, c.enclave.address, "second");
    const events = await readRunEvents(c.relayer, c.contract, { fromBlock: 0n, toBlock: "latest", collaborationId: id });
    assert.deepEqual(events.assignments.map((a) => a.kitCid), ["first", "second"]);
  });

  test("requestRun: UnknownCollaboration, UnknownParty, NodesNotAssigned, NotApprovedByAll after a withdrawal, MaxRunsReached", async () => {
    const { id: bare } = await approved();
    await rejectsWith(requestRun(c.writers[0]!, c.contract, 98n), "UnknownCollaboration");
    await rejectsWith(requestRun(c.writers[2]!, c.contract, bare), "UnknownParty");
    await assignNode(c.writers[0]!, c.contract, bare, c.enclave.address, "kit");
    const missing = await rejectsWith(requestRun(c.writers[0]!, c.contract, bare), "NodesNotAssigned");
    assert.equal(missing.args.missing, 0b10);

    const { id } = await assigned(1);
    await withdrawApproval(c.writers[1]!, c.contract, id);
    const err = await rejectsWith(requestRun(c.writers[0]!, c.contract, id), "NotApprovedByAll");
    assert.equal(err.args.missing, 0b10);

    const { id: once, th: onceHash } = await assigned(1);
    const report = makeReport(1, c.enclave.address);
    await recordRun(c.relayer, c.contract, once, report, await signRun(c, c.enclave.account, once, onceHash, report));
    await rejectsWith(requestRun(c.writers[0]!, c.contract, once), "MaxRunsReached");
  });

  test("joinRun: WrongRunId for a run that is not pending, NotPartyNode for another operator, an unassigned party or a revoked enclave", async () => {
    const { id, th, partner } = await assigned();
    await requestRun(c.writers[0]!, c.contract, id);
    const wrong = await rejectsWith(joinRun(c.writers[0]!, c.contract, id, 2, 0, "p"), "WrongRunId");
    assert.equal(wrong.args.expected, 1);
    const err = await rejectsWith(joinRun(c.writers[1]!, c.contract, id, 1, 0, "p"), "NotPartyNode");
    assert.deepEqual([err.args.party, err.args.sender], [0, c.accounts[1]!.address]);
    await rejectsWith(joinRun(c.writers[0]!, c.contract, id, 1, 2, "p"), "NotPartyNode");
    await revokeEnclave(c.f.attester, c.f.deployment.registry, partner.address);
    await rejectsWith(joinRun(c.writers[1]!, c.contract, id, 1, 1, "p"), "NotPartyNode");
    // Once run 1 is recorded it is no longer pending.
    const report = makeReport(1, c.enclave.address);
    await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, th, report));
    await rejectsWith(joinRun(c.writers[0]!, c.contract, id, 1, 0, "p"), "WrongRunId");
    await rejectsWith(joinRun(c.writers[0]!, c.contract, 97n, 1, 0, "p"), "UnknownCollaboration");
  });

  test("reportRefusal: the party node's operator publishes its enclave's typed code for the pending run; RunRefused carries it", async (t) => {
    const { id, partner } = await assigned();
    await requestRun(c.writers[0]!, c.contract, id);
    const refused = await reportRefusal(c.writers[1]!, c.contract, id, 1, 1, "ROW_LEVEL_OUTPUT");
    t.diagnostic(`gas: reportRefusal ${refused.gasUsed} (a 16-character code)`);
    const events = await readRunEvents(c.relayer, c.contract, { fromBlock: 0n, toBlock: "latest", collaborationId: id });
    assert.deepEqual(events.refusals.map((r) => [r.runId, r.party, r.enclave, r.code]), [[1, 1, partner.address, "ROW_LEVEL_OUTPUT"]]);
    // A refusal leaves the run pending: the other node may refuse too, and a later request retries it.
    await reportRefusal(c.writers[0]!, c.contract, id, 1, 0, "COLLAB_PEER_REFUSED");
    assert.equal((await readRunEvents(c.relayer, c.contract, { fromBlock: 0n, toBlock: "latest", collaborationId: id })).refusals.length, 2);
  });

  test("reportRefusal: WrongRunId, NotPartyNode, UnknownCollaboration, InvalidRefusalCode for anything but a typed code", async () => {
    const { id, th } = await assigned();
    await requestRun(c.writers[0]!, c.contract, id);
    const wrong = await rejectsWith(reportRefusal(c.writers[1]!, c.contract, id, 2, 1, "QUERY_FAILED"), "WrongRunId");
    assert.equal(wrong.args.expected, 1);
    const notNode = await rejectsWith(reportRefusal(c.writers[0]!, c.contract, id, 1, 1, "QUERY_FAILED"), "NotPartyNode");
    assert.deepEqual([notNode.args.party, notNode.args.sender], [1, c.accounts[0]!.address]);
    await rejectsWith(reportRefusal(c.writers[2]!, c.contract, id, 1, 0, "QUERY_FAILED"), "NotPartyNode");
    await rejectsWith(reportRefusal(c.writers[0]!, c.contract, 96n, 1, 0, "QUERY_FAILED"), "UnknownCollaboration");
    // The contract takes only a code: A-Z, 0-9, _ from the left, zero-padded. Raw words, past the client's own check.
    const raw = (word: Hex) => writeContractTransaction(c.writers[1]!, "reportRefusal", { address: c.contract, abi: collaborationsAbi, functionName: "reportRefusal", args: [id, 1, 1, word] });
    const ascii = (text: string) => `0x${Buffer.from(text, "latin1").toString("hex").padEnd(64, "0")}` as Hex;
    for (const bad of [ascii(""), ascii("lower_case"), ascii("SPACE IN"), ascii("ROW=42"), `${ascii("A").slice(0, 64)}01` as Hex, ascii("A\u0000B")]) {
      const err = await rejectsWith(raw(bad), "InvalidRefusalCode");
      assert.equal(err.args.code, bad);
    }
    await raw(ascii("A".repeat(32)));
    // Once run 1 is recorded it is no longer pending.
    const report = makeReport(1, c.enclave.address);
    await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, th, report));
    await rejectsWith(reportRefusal(c.writers[1]!, c.contract, id, 1, 1, "QUERY_FAILED"), "WrongRunId");
  });
});
