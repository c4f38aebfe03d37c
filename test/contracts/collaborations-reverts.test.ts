/** Every revert of Collaborations, each with the custom error and arguments it names. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { keccak256, stringToBytes, zeroAddress, zeroHash, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { approveCollaboration } from "../../src/chain/actions/approve-collaboration.ts";
import { createCollaboration } from "../../src/chain/actions/create-collaboration.ts";
import { recordRun } from "../../src/chain/actions/record-run.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { withdrawApprovalBySig } from "../../src/chain/actions/withdraw-approval-by-sig.ts";
import { epsilonToFixed, queryDigest, type CollaborationTerms, type RunReport } from "../../src/protocol/collaboration.ts";
import { advanceTime, newEnclave, randomDigest, register, rejectsWith, type TestEnclave } from "./fixture.ts";
import {
  COMPUTE_MEASUREMENT,
  approvalOf,
  approveAll,
  create,
  makeReport,
  makeTerms,
  party,
  signApproval,
  signRun,
  signWithdrawal,
  startCollabFixture,
  type ApprovalFor,
  type CollabFixture,
} from "./collaborations-fixture.ts";

describe("Collaborations reverts", () => {
  let c: CollabFixture;
  before(async () => {
    c = await startCollabFixture();
  });
  after(() => c.f.close());

  /** A created collaboration approved by both parties (unless told otherwise). */
  async function ready(overrides: Partial<CollaborationTerms> = {}, approve = true): Promise<{ id: bigint; th: Hex; of: ApprovalFor; terms: CollaborationTerms }> {
    const terms = makeTerms(c, overrides);
    const created = await create(c, terms);
    const of = approvalOf(created.collaborationId, created.termsHash, terms);
    if (approve) await approveAll(c, of, c.accounts.slice(0, 2));
    return { id: created.collaborationId, th: created.termsHash, of, terms };
  }

  async function run(id: bigint, th: Hex, report: RunReport, signer: TestEnclave = c.enclave) {
    return recordRun(c.relayer, c.contract, id, report, await signRun(c, signer.account, id, th, report));
  }

  describe("createCollaboration", () => {
    const invalid: [string, (t: CollaborationTerms, cf: CollabFixture) => void, RegExp][] = [
      ["one party", (t) => void t.parties.pop(), /at least two parties/],
      ["33 parties", (t) => void t.parties.push(...Array.from({ length: 31 }, () => party(privateKeyToAccount(generatePrivateKey()).address))), /at most 32/],
      ["a compute index past the parties", (t) => void (t.computeParty = 2), /computeParty/],
      ["a zero account", (t) => void (t.parties[1]!.account = zeroAddress), /zero address/],
      ["a party twice", (t) => void (t.parties[1]!.account = t.parties[0]!.account), /appears twice/],
      ["a party with neither measurement nor manifest", (t) => void (t.parties[1]!.measurement = zeroHash), /neither a measurement nor a manifest/],
      ["a manifest without a role", (t) => void (t.parties[1]!.manifestDigest = randomDigest()), /needs a role/],
      ["a role without a manifest", (t) => void (t.parties[1]!.manifestRole = randomDigest()), /needs a role/],
      [
        "a compute party with only a manifest",
        (t) => Object.assign(t.parties[0]!, { measurement: zeroHash, manifestDigest: randomDigest(), manifestRole: randomDigest() }),
        /compute party must name a measurement/,
      ],
      ["a zero query digest", (t) => Object.assign(t, { queryDigest: zeroHash, queryText: "" , queryCid: "bafkrei" }), /queryDigest is zero/],
      ["neither query text nor CID", (t) => void (t.queryText = ""), /neither the query text nor its CID/],
      ["a zero policy digest", (t) => void (t.policyDigest = zeroHash), /policyDigest is zero/],
      ["maxRuns 0", (t) => void (t.maxRuns = 0), /maxRuns is zero/],
      ["no recipient", (t) => void (t.recipient = ""), /no recipient/],
      ["a zero recipient pin", (t) => void (t.recipientPin = zeroHash), /recipientPin is zero/],
    ];
    for (const [what, mutate, reason] of invalid) {
      test(`InvalidTerms: ${what}`, async () => {
        const terms = makeTerms(c);
        mutate(terms, c);
        const err = await rejectsWith(create(c, terms), "InvalidTerms");
        assert.match(String(err.args.reason), reason);
      });
    }

    test("QueryDigestMismatch: the SQL text is not the one the digest names", async () => {
      const terms = makeTerms(c, { queryText: "SELECT * FROM cards" });
      const err = await rejectsWith(create(c, terms), "QueryDigestMismatch");
      assert.equal(err.args.queryDigest, terms.queryDigest);
      assert.equal(err.args.textDigest, queryDigest("SELECT * FROM cards"));
    });

    test("CollaborationExists: the same creator and salt twice", async () => {
      const terms = makeTerms(c);
      const { salt, collaborationId } = await create(c, terms);
      const err = await rejectsWith(createCollaboration(c.relayer, c.contract, makeTerms(c), salt), "CollaborationExists");
      assert.equal(err.args.collaborationId, collaborationId);
    });
  });

  describe("approve and withdrawApproval", () => {
    test("UnknownCollaboration", async () => {
      const { of } = await ready({}, false);
      const signed = await signApproval(c, c.accounts[0]!, { ...of, collaborationId: 42n }, 0n);
      await rejectsWith(approveCollaboration(c.relayer, c.contract, signed), "UnknownCollaboration");
      await rejectsWith(withdrawApproval(c.writers[0]!, c.contract, 42n), "UnknownCollaboration");
    });

    test("UnknownParty: a signer, or a withdrawer, who is not a party", async () => {
      const { id, of } = await ready({}, false);
      const outsider = c.accounts[2]!;
      const err = await rejectsWith(approveCollaboration(c.relayer, c.contract, await signApproval(c, outsider, of, 0n)), "UnknownParty");
      assert.equal(err.args.account, outsider.address);
      await rejectsWith(withdrawApproval(c.writers[2]!, c.contract, id), "UnknownParty");
    });

    test("InvalidApprovalSignature: another key, another collaboration, another policy or query", async () => {
      const { id, of } = await ready({}, false);
      const other = await ready({}, false);
      const party0 = c.accounts[0]!.address;
      const forgery = await signApproval(c, privateKeyToAccount(generatePrivateKey()), of, 0n);
      const cases = [
        { ...forgery, party: party0 },
        { ...(await signApproval(c, c.accounts[0]!, other.of, 0n)), collaborationId: id },
        await signApproval(c, c.accounts[0]!, { ...of, policyDigest: randomDigest() }, 0n),
        await signApproval(c, c.accounts[0]!, { ...of, queryDigest: queryDigest("SELECT customer_id FROM cards") }, 0n),
        await signApproval(c, c.accounts[0]!, { ...of, termsHash: randomDigest() }, 0n),
      ];
      for (const signed of cases) {
        const err = await rejectsWith(approveCollaboration(c.relayer, c.contract, signed), "InvalidApprovalSignature");
        assert.equal(err.args.party, party0);
      }
      const wrongDomain = await c.accounts[0]!.signTypedData({
        domain: { ...c.domain, chainId: 1n },
        types: { Approval: [{ name: "collaborationId", type: "uint256" }, { name: "termsHash", type: "bytes32" }, { name: "queryDigest", type: "bytes32" }, { name: "policyDigest", type: "bytes32" }, { name: "nonce", type: "uint64" }] },
        primaryType: "Approval",
        message: { ...of, nonce: 0n },
      });
      await rejectsWith(approveCollaboration(c.relayer, c.contract, { collaborationId: id, party: party0, nonce: 0n, signature: wrongDomain }), "InvalidApprovalSignature");
    });

    test("malformed signatures: OpenZeppelin's ECDSA errors (wrong length, no recoverable signer)", async () => {
      const { id } = await ready({}, false);
      const party0 = c.accounts[0]!.address;
      await rejectsWith(approveCollaboration(c.relayer, c.contract, { collaborationId: id, party: party0, nonce: 0n, signature: "0x1234" }), "ECDSAInvalidSignatureLength");
      const zeroSignature = `0x${"00".repeat(64)}1b` as Hex;
      await rejectsWith(approveCollaboration(c.relayer, c.contract, { collaborationId: id, party: party0, nonce: 0n, signature: zeroSignature }), "ECDSAInvalidSignature");
      const approved = (await ready()).id;
      await rejectsWith(recordRun(c.relayer, c.contract, approved, makeReport(1, c.enclave.address), zeroSignature), "ECDSAInvalidSignature");
    });

    test("AlreadyApproved, then StaleNonce: a relayed approval replayed after a withdrawal", async () => {
      const { id, of } = await ready({}, false);
      const signed = await signApproval(c, c.accounts[1]!, of);
      await approveCollaboration(c.relayer, c.contract, signed);
      await rejectsWith(approveCollaboration(c.relayer, c.contract, signed), "AlreadyApproved");
      await withdrawApproval(c.writers[1]!, c.contract, id);
      const err = await rejectsWith(approveCollaboration(c.relayer, c.contract, signed), "StaleNonce");
      assert.deepEqual([err.args.nonce, err.args.expected], [0n, 2n]);
    });

    test("StaleNonce: a signed approval the party voided by withdrawing before anyone relayed it", async () => {
      const { id, of } = await ready({}, false);
      const signed = await signApproval(c, c.accounts[0]!, of);
      await withdrawApproval(c.writers[0]!, c.contract, id);
      await rejectsWith(approveCollaboration(c.relayer, c.contract, signed), "StaleNonce");
    });
  });

  describe("withdrawApprovalBySig", () => {
    test("UnknownCollaboration and UnknownParty", async () => {
      const { id } = await ready({}, false);
      await rejectsWith(withdrawApprovalBySig(c.relayer, c.contract, await signWithdrawal(c, c.accounts[0]!, 77n, 0n)), "UnknownCollaboration");
      const err = await rejectsWith(withdrawApprovalBySig(c.relayer, c.contract, await signWithdrawal(c, c.accounts[2]!, id, 0n)), "UnknownParty");
      assert.equal(err.args.account, c.accounts[2]!.address);
    });

    test("InvalidWithdrawalSignature: another key, or an Approval passed off as a Withdrawal", async () => {
      const { id, of } = await ready();
      const party0 = c.accounts[0]!.address;
      const forged = await signWithdrawal(c, privateKeyToAccount(generatePrivateKey()), id, 1n);
      let err = await rejectsWith(withdrawApprovalBySig(c.relayer, c.contract, { ...forged, party: party0 }), "InvalidWithdrawalSignature");
      assert.equal(err.args.party, party0);
      const approval = await signApproval(c, c.accounts[0]!, of, 1n);
      err = await rejectsWith(withdrawApprovalBySig(c.relayer, c.contract, approval), "InvalidWithdrawalSignature");
      assert.notEqual(err.args.recovered, party0);
    });

    test("StaleNonce: a used Withdrawal replayed after the party approved again", async () => {
      const { id, of } = await ready();
      const signed = await signWithdrawal(c, c.accounts[1]!, id);
      await withdrawApprovalBySig(c.relayer, c.contract, signed);
      await approveAll(c, of, [c.accounts[1]!]);
      const err = await rejectsWith(withdrawApprovalBySig(c.relayer, c.contract, signed), "StaleNonce");
      assert.deepEqual([err.args.nonce, err.args.expected], [1n, 3n]);
    });
  });

  describe("recordRun", () => {
    test("UnknownCollaboration", async () => {
      await rejectsWith(run(99n, randomDigest(), makeReport(1, c.enclave.address)), "UnknownCollaboration");
    });

    test("NotApprovedByAll: before every approval, and after a party withdraws", async () => {
      const { id, th, of } = await ready({}, false);
      let err = await rejectsWith(run(id, th, makeReport(1, c.enclave.address)), "NotApprovedByAll");
      assert.equal(err.args.missing, 0b11);
      await approveAll(c, of, [c.accounts[1]!]);
      err = await rejectsWith(run(id, th, makeReport(1, c.enclave.address)), "NotApprovedByAll");
      assert.equal(err.args.missing, 0b01);
      await approveAll(c, of, [c.accounts[0]!]);
      await run(id, th, makeReport(1, c.enclave.address));
      await withdrawApproval(c.writers[1]!, c.contract, id);
      err = await rejectsWith(run(id, th, makeReport(2, c.enclave.address)), "NotApprovedByAll");
      assert.equal(err.args.missing, 0b10);
    });

    test("WrongRunId: a recorded run's signature replayed, a run id that skips ahead", async () => {
      const { id, th } = await ready();
      const report = makeReport(1, c.enclave.address);
      const signature = await signRun(c, c.enclave.account, id, th, report);
      await recordRun(c.relayer, c.contract, id, report, signature);
      let err = await rejectsWith(recordRun(c.relayer, c.contract, id, report, signature), "WrongRunId");
      assert.deepEqual([err.args.runId, err.args.expected], [1, 2]);
      err = await rejectsWith(run(id, th, makeReport(3, c.enclave.address)), "WrongRunId");
      assert.deepEqual([err.args.runId, err.args.expected], [3, 2]);
    });

    test("MaxRunsReached", async () => {
      const { id, th } = await ready({ maxRuns: 1, dpBudget: 0n });
      await run(id, th, makeReport(1, c.enclave.address, { epsilonSpent: 0n }));
      const err = await rejectsWith(run(id, th, makeReport(2, c.enclave.address, { epsilonSpent: 0n })), "MaxRunsReached");
      assert.equal(err.args.maxRuns, 1);
    });

    test("BudgetExceeded: a run that would spend past the budget; the budget spent exactly is allowed", async () => {
      const { id, th } = await ready({ maxRuns: 5, dpBudget: epsilonToFixed("2") });
      await run(id, th, makeReport(1, c.enclave.address, { epsilonSpent: epsilonToFixed("1.5") }));
      const err = await rejectsWith(run(id, th, makeReport(2, c.enclave.address, { epsilonSpent: epsilonToFixed("0.500001") })), "BudgetExceeded");
      assert.deepEqual([err.args.spent, err.args.epsilon, err.args.budget], [1_500_000n, 500_001n, 2_000_000n]);
      await run(id, th, makeReport(2, c.enclave.address, { epsilonSpent: epsilonToFixed("0.5") }));
      await rejectsWith(run(id, th, makeReport(3, c.enclave.address, { epsilonSpent: 1n })), "BudgetExceeded");
      await rejectsWith(run(id, th, makeReport(3, c.enclave.address, { epsilonSpent: 2n ** 64n - 1n })), "BudgetExceeded");
    });

    test("EpsilonMissing with a DP budget, EpsilonWithoutBudget without one", async () => {
      const dp = await ready();
      await rejectsWith(run(dp.id, dp.th, makeReport(1, c.enclave.address, { epsilonSpent: 0n })), "EpsilonMissing");
      const plain = await ready({ dpBudget: 0n });
      await rejectsWith(run(plain.id, plain.th, makeReport(1, c.enclave.address, { epsilonSpent: 1n })), "EpsilonWithoutBudget");
    });

    test("InvalidRunSignature: another key, a tampered count, another collaboration's terms", async () => {
      const { id, th } = await ready();
      const report = makeReport(1, c.enclave.address);
      const stranger = newEnclave();
      let err = await rejectsWith(run(id, th, report, stranger), "InvalidRunSignature");
      assert.equal(err.args.recovered, stranger.address);
      const signature = await signRun(c, c.enclave.account, id, th, report);
      err = await rejectsWith(recordRun(c.relayer, c.contract, id, { ...report, rowsSuppressed: 0n }, signature), "InvalidRunSignature");
      assert.equal(err.args.enclave, c.enclave.address);
      await rejectsWith(recordRun(c.relayer, c.contract, id, { ...report, resultDigest: randomDigest() }, signature), "InvalidRunSignature");
      await rejectsWith(run(id, randomDigest(), report), "InvalidRunSignature");
    });

    test("EnclaveNotActive: never registered, expired, revoked", async () => {
      const { id, th } = await ready();
      const unregistered = newEnclave();
      let err = await rejectsWith(run(id, th, makeReport(1, unregistered.address), unregistered), "EnclaveNotActive");
      assert.equal(err.args.enclave, unregistered.address);

      const shortLived = newEnclave();
      await register(c.f, shortLived, c.accounts[0]!.address, { measurement: COMPUTE_MEASUREMENT, ttl: 60n });
      await advanceTime(c.f, 120n);
      err = await rejectsWith(run(id, th, makeReport(1, shortLived.address), shortLived), "EnclaveNotActive");

      const revoked = newEnclave();
      await register(c.f, revoked, c.accounts[0]!.address, { measurement: COMPUTE_MEASUREMENT });
      await run(id, th, makeReport(1, revoked.address), revoked);
      await revokeEnclave(c.f.attester, c.f.deployment.registry, revoked.address);
      await rejectsWith(run(id, th, makeReport(2, revoked.address), revoked), "EnclaveNotActive");
    });

    test("WrongEnclaveOperator: the right code run by another operator", async () => {
      const { id, th } = await ready();
      const elsewhere = newEnclave();
      await register(c.f, elsewhere, c.accounts[1]!.address, { measurement: COMPUTE_MEASUREMENT });
      const err = await rejectsWith(run(id, th, makeReport(1, elsewhere.address), elsewhere), "WrongEnclaveOperator");
      assert.deepEqual([err.args.operator, err.args.required], [c.accounts[1]!.address, c.accounts[0]!.address]);
    });

    test("WrongEnclaveMeasurement: the compute operator's enclave running other code", async () => {
      const { id, th } = await ready();
      const other = newEnclave();
      const measurement = keccak256(stringToBytes("some other enclave program"));
      await register(c.f, other, c.accounts[0]!.address, { measurement });
      const err = await rejectsWith(run(id, th, makeReport(1, other.address), other), "WrongEnclaveMeasurement");
      assert.deepEqual([err.args.measurement, err.args.required], [measurement, COMPUTE_MEASUREMENT]);
    });

    test("SimulatedEnclaveNotAllowed: a simulated TEE where the terms want hardware; hardware passes", async () => {
      const { id, th } = await ready({ allowSimulated: false });
      await rejectsWith(run(id, th, makeReport(1, c.enclave.address)), "SimulatedEnclaveNotAllowed");
      const hardware = newEnclave();
      await register(c.f, hardware, c.accounts[0]!.address, { measurement: COMPUTE_MEASUREMENT, simulated: false });
      await run(id, th, makeReport(1, hardware.address), hardware);
    });
  });
});
