/**
 * proveCollabState against a real Collaborations contract on the in-process chain, reached over JSON-RPC
 * (eth_getProof, headers from the endpoint): each refusal a party's enclave makes from the proved storage
 * (terms, withdrawal, a recorded run, maxRuns, the DP budget), and the block it proved at.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Hex } from "viem";
import { getBlock } from "viem/actions";
import { recordRun } from "../../../src/chain/actions/record-run.ts";
import { withdrawApproval } from "../../../src/chain/actions/withdraw-approval.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../../src/chain/rpc-server.ts";
import { parseOutputPolicy } from "../../../src/enclave/cleanroom/policy.ts";
import { proveCollabState } from "../../../src/enclave/jobs/collab/chain-state.ts";
import type { CheckedCollaboration } from "../../../src/enclave/jobs/collab/verify.ts";
import { epsilonToFixed, type CollaborationTerms } from "../../../src/protocol/collaboration.ts";
import { approvalOf, approveAll, create, makeReport, makeTerms, signRun, startCollabFixture, SQL, type CollabFixture } from "../../contracts/collaborations-fixture.ts";
import { randomDigest } from "../../contracts/fixture.ts";

let c: CollabFixture;
let rpc: ChainRpcServer;
before(async () => {
  c = await startCollabFixture();
  rpc = await startChainRpcServer({ provider: c.f.chain.provider });
});
after(async () => {
  await rpc.close();
  await c.f.close();
});

const names = ["retailer", "bank"];
const endpoints = () => ({ endpoints: [rpc.url], quorum: 1, finalityDepth: 0 });

function checkedOf(id: bigint, terms: CollaborationTerms, termsHash: Hex, dp: boolean): CheckedCollaboration {
  const policyJson = { identity: "customer_id", minGroupSize: 5, ...(dp ? { dp: { epsilon: 1, budget: 2.5 } } : {}) };
  return { binding: { chainId: BigInt(c.f.chain.chainId), contract: c.contract, collaborationId: id }, terms, termsHash, sql: SQL, policy: parseOutputPolicy(policyJson), policyJson };
}

async function approved(overrides: Partial<CollaborationTerms> = {}) {
  const terms = makeTerms(c, overrides);
  const made = await create(c, terms);
  await approveAll(c, approvalOf(made.collaborationId, made.termsHash, terms), c.accounts.slice(0, 2));
  return { id: made.collaborationId, terms, termsHash: made.termsHash };
}

async function record(id: bigint, termsHash: Hex, runId: number, epsilon: string) {
  const report = makeReport(runId, c.enclave.address, { epsilonSpent: epsilonToFixed(epsilon) });
  await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, termsHash, report));
}

const refused = (code: string, message: RegExp) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, code, String(e));
  assert.match((e as Error).message, message);
  return true;
};

test("an approved collaboration proves at the endpoint's block; the epsilon spent comes from the chain", async () => {
  const { id, terms, termsHash } = await approved();
  await record(id, termsHash, 1, "1");
  const proven = await proveCollabState(endpoints(), checkedOf(id, terms, termsHash, true), 2, names);
  assert.equal(proven.dpSpent, 1_000_000n);
  assert.equal(proven.provedAt.chosenBy, "party-endpoints");
  const head = await getBlock(c.f.reader);
  assert.deepEqual([proven.provedAt.number, proven.provedAt.hash], [String(head.number), head.hash]);
});

test("other terms, or no collaboration at all, are refused", async () => {
  const { id, terms, termsHash } = await approved();
  await assert.rejects(proveCollabState(endpoints(), checkedOf(id, terms, randomDigest(), false), 1, names), refused("COLLAB_TERMS_INVALID", /not the terms this job was given/));
  await assert.rejects(proveCollabState(endpoints(), checkedOf(id + 1n, terms, termsHash, false), 1, names), refused("COLLAB_TERMS_INVALID", /does not exist/));
});

test("a withdrawn approval is refused with the party and the block", async () => {
  const { id, terms, termsHash } = await approved();
  await withdrawApproval(c.writers[1]!, c.contract, id);
  const head = await getBlock(c.f.reader);
  await assert.rejects(proveCollabState(endpoints(), checkedOf(id, terms, termsHash, false), 1, names), refused("COLLAB_NOT_APPROVED", new RegExp(`party 1 \\(bank\\) withdrew its approval: it does not stand at block ${head.number}`)));
});

test("a recorded run is not run again; past maxRuns or the DP budget nothing runs", async () => {
  const { id, terms, termsHash } = await approved();
  await record(id, termsHash, 1, "1");
  await record(id, termsHash, 2, "1");
  await assert.rejects(proveCollabState(endpoints(), checkedOf(id, terms, termsHash, true), 2, names), refused("COLLAB_RUN_RECORDED", /run 2 is already recorded \(the chain holds 2 runs/));
  // 2.0 of 2.5 spent: a run of epsilon 1 would exceed it.
  await assert.rejects(proveCollabState(endpoints(), checkedOf(id, terms, termsHash, true), 3, names), refused("DP_BUDGET_EXCEEDED", /budget/));

  const once = await approved({ maxRuns: 1, dpBudget: 0n });
  await record(once.id, once.termsHash, 1, "0");
  await assert.rejects(proveCollabState(endpoints(), checkedOf(once.id, once.terms, once.termsHash, false), 2, names), refused("COLLAB_MAX_RUNS", /run 1 of its 1 allowed times/));
});

test("a finality depth proves below the head: a withdrawal in the last blocks is not seen yet", async () => {
  const { id, terms, termsHash } = await approved();
  await withdrawApproval(c.writers[1]!, c.contract, id);
  const proven = await proveCollabState({ ...endpoints(), finalityDepth: 1 }, checkedOf(id, terms, termsHash, false), 1, names);
  assert.equal(BigInt(proven.provedAt.number), (await getBlock(c.f.reader)).number - 1n);
});
