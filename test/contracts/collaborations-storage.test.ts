/**
 * The storage layout src/protocol/collaboration.ts publishes for enclaves that prove a collaboration's state
 * with eth_getProof: read word by word from the chain and decoded, it is what the contract's getters say.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { pad, toHex, type Hex } from "viem";
import { collaborationsAbi } from "../../src/chain/abi/Collaborations.ts";
import { readCollaboration, readPartyState } from "../../src/chain/actions/read-collaboration.ts";
import { recordRun } from "../../src/chain/actions/record-run.ts";
import { withdrawApproval } from "../../src/chain/actions/withdraw-approval.ts";
import { mappingSlot, nestedMappingSlot } from "../../src/enclave/chain-view/slots.ts";
import { collaborationsStorage as layout, decodePackedCollaboration, decodePartyWord, epsilonToFixed } from "../../src/protocol/collaboration.ts";
import { approvalOf, approveAll, create, makeReport, makeTerms, signRun, startCollabFixture, type CollabFixture } from "./collaborations-fixture.ts";

let c: CollabFixture;
before(async () => {
  c = await startCollabFixture();
});
after(() => c.f.close());

async function word(slot: Hex, offset = 0n): Promise<Hex> {
  const at = toHex(BigInt(slot) + offset);
  return (await c.f.reader.getStorageAt({ address: c.contract, slot: pad(at, { size: 32 }) })) ?? pad("0x0", { size: 32 });
}

test("collaborations[id], parties[id][account] and runResults[id][runId] decode from raw storage to what the getters return", async () => {
  const terms = makeTerms(c, { maxRuns: 7, allowSimulated: true }, 3);
  const created = await create(c, terms);
  const id = created.collaborationId;
  await approveAll(c, approvalOf(id, created.termsHash, terms), c.accounts.slice(0, 3));
  const report = makeReport(1, c.enclave.address, { epsilonSpent: epsilonToFixed("0.75") });
  await recordRun(c.relayer, c.contract, id, report, await signRun(c, c.enclave.account, id, created.termsHash, report));
  await withdrawApproval(c.writers[1]!, c.contract, id);

  const base = mappingSlot({ type: "uint256", value: id }, layout.collaborationsSlot);
  const state = await readCollaboration(c.f.reader, c.contract, id);
  const packed = decodePackedCollaboration(await word(base, layout.words.packed));
  assert.deepEqual(packed, {
    maxRuns: state.maxRuns,
    runs: state.runs,
    dpBudget: state.dpBudget,
    dpSpent: state.dpSpent,
    partyCount: state.partyCount,
    allowSimulated: state.allowSimulated,
    approvals: state.approvals,
  });
  assert.deepEqual([packed.maxRuns, packed.runs, packed.dpSpent, packed.partyCount, packed.approvals], [7, 1, 750_000n, 3, 0b101]);
  assert.equal(BigInt(await word(base, layout.words.computeOperator)), BigInt(state.computeOperator));
  assert.equal(await word(base, layout.words.computeMeasurement), state.computeMeasurement);
  assert.equal(await word(base, layout.words.termsHash), created.termsHash);
  assert.equal(await word(base, layout.words.queryDigest), terms.queryDigest);
  assert.equal(await word(base, layout.words.policyDigest), terms.policyDigest);

  for (const account of [...c.accounts, c.f.requester.account]) {
    const slot = nestedMappingSlot([{ type: "uint256", value: id }, { type: "address", value: account.address }], layout.partiesSlot);
    assert.deepEqual(decodePartyWord(await word(slot)), await readPartyState(c.f.reader, c.contract, id, account.address));
  }
  assert.deepEqual(decodePartyWord(await word(nestedMappingSlot([{ type: "uint256", value: id }, { type: "address", value: c.accounts[1]!.address }], layout.partiesSlot))), { index: 1, nonce: 2n });

  // A recorded run's result digest (what a compute enclave proves before it releases the result); zero for a run not recorded.
  const runResult = (runId: number) => word(nestedMappingSlot([{ type: "uint256", value: id }, { type: "uint256", value: BigInt(runId) }], layout.runResultsSlot));
  assert.equal(await runResult(1), report.resultDigest);
  assert.equal(await runResult(1), await c.f.reader.readContract({ address: c.contract, abi: collaborationsAbi, functionName: "runResults", args: [id, 1] }));
  assert.equal(BigInt(await runResult(2)), 0n);
});
