/**
 * The storage layouts src/protocol/grants.ts and pipelines.ts publish for enclaves that prove a grant's or a
 * pipeline's state with eth_getProof: read word by word from the chain and decoded, they are what the getters say.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { pad, toHex, type Address, type Hex } from "viem";
import { revokeGrant } from "../../src/chain/actions/revoke-grant.ts";
import { readGrant } from "../../src/chain/actions/read-grant.ts";
import { readPipeline } from "../../src/chain/actions/read-pipeline.ts";
import { requestPipelineRun } from "../../src/chain/actions/register-pipeline.ts";
import { deployPipelines } from "../../src/chain/deploy.ts";
import { mappingSlot, nestedMappingSlot } from "../../src/enclave/chain-view/slots.ts";
import { decodeGrantOperatorWord, decodeGrantOwnerWord, grantsStorage } from "../../src/protocol/grants.ts";
import { decodePipelineOwnerWord, pipelinesDomain, pipelinesStorage } from "../../src/protocol/pipelines.ts";
import { randomDigest } from "./fixture.ts";
import { createOwned, startGrantsFixture, use, type GrantsFixture } from "./grants-fixture.ts";
import { anchor, makeAnchor, registered, type PipelinesFixture } from "./pipelines-fixture.ts";

let g: GrantsFixture;
before(async () => {
  g = await startGrantsFixture();
});
after(() => g.f.close());

async function word(contract: Address, slot: Hex, offset = 0n): Promise<Hex> {
  const at = toHex(BigInt(slot) + offset);
  return (await g.f.reader.getStorageAt({ address: contract, slot: pad(at, { size: 32 }) })) ?? pad("0x0", { size: 32 });
}

test("grants[id] and runRecorded[id][runId] decode from raw storage to what the getters return", async () => {
  const { grantId: id, terms } = await createOwned(g, { maxUses: 5, operations: 9 });
  const { runId } = await use(g, id);
  await use(g, id);
  await revokeGrant(g.ownerWriter, g.contract, id);

  const state = await readGrant(g.f.reader, g.contract, id);
  const base = mappingSlot({ type: "uint256", value: id }, grantsStorage.grantsSlot);
  const w0 = decodeGrantOwnerWord(await word(g.contract, base, grantsStorage.words.owner));
  const w1 = decodeGrantOperatorWord(await word(g.contract, base, grantsStorage.words.operator));
  assert.deepEqual(
    { ...w0, ...w1 },
    { owner: state.owner, notBefore: state.notBefore, expiry: state.expiry, operations: 9, revoked: true, operator: state.operator, maxUses: 5, uses: 2 },
  );
  assert.equal(w0.notBefore, terms.notBefore);
  assert.equal(await word(g.contract, base, grantsStorage.words.dataset), terms.dataset);
  assert.equal(await word(g.contract, base, grantsStorage.words.statementDigest), terms.statementDigest);
  const recorded = (r: Hex) => word(g.contract, nestedMappingSlot([{ type: "uint256", value: id }, { type: "bytes32", value: r }], grantsStorage.runRecordedSlot));
  assert.equal(BigInt(await recorded(runId)), 1n);
  assert.equal(BigInt(await recorded(randomDigest())), 0n);
});

test("pipelines[id], isCandidate and runAnchored decode from raw storage to what the getters return", async () => {
  const { address } = await deployPipelines(g.f.deployer, g.f.deployment.registry);
  const p: PipelinesFixture = {
    f: g.f,
    contract: address,
    deployGas: 0n,
    owner: g.ownerWriter,
    relayer: g.relayer,
    candidates: [g.enclave, g.otherEnclave],
    outsider: g.enclave,
    domain: pipelinesDomain(BigInt(g.f.chain.chainId), address),
  };
  const { pipelineId: id, registration } = await registered(p);
  const run = makeAnchor();
  await anchor(p, id, registration.pipelineDigest, run);
  await requestPipelineRun(p.owner, address, id); // the request count shares word 0 and must not disturb its fields

  const state = await readPipeline(g.f.reader, address, id);
  const base = mappingSlot({ type: "uint256", value: id }, pipelinesStorage.pipelinesSlot);
  const w0 = decodePipelineOwnerWord(await word(address, base, pipelinesStorage.words.owner));
  assert.deepEqual(w0, { owner: state.owner, runs: 1, retired: false });
  assert.equal(await word(address, base, pipelinesStorage.words.pipelineDigest), registration.pipelineDigest);
  assert.equal(await word(address, base, pipelinesStorage.words.cursor), run.cursorAfter);
  const candidate = (e: Address) => word(address, nestedMappingSlot([{ type: "uint256", value: id }, { type: "address", value: e }], pipelinesStorage.isCandidateSlot));
  assert.equal(BigInt(await candidate(g.enclave.address)), 1n);
  assert.equal(BigInt(await candidate(g.f.deployer.account.address)), 0n);
  const anchored = (r: Hex) => word(address, nestedMappingSlot([{ type: "uint256", value: id }, { type: "bytes32", value: r }], pipelinesStorage.runAnchoredSlot));
  assert.equal(BigInt(await anchored(run.runId)), 1n);
  assert.equal(BigInt(await anchored(randomDigest())), 0n);
});
