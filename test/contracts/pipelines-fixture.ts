/** A Pipelines contract on the fixture's chain: an owner, candidate enclaves, and signing helpers. */
import { zeroHash, type Address, type Hex } from "viem";
import { deployPipelines } from "../../src/chain/deploy.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { anchorPipelineRun } from "../../src/chain/actions/anchor-pipeline-run.ts";
import { registerPipeline, type PipelineRegistration } from "../../src/chain/actions/register-pipeline.ts";
import { pipelineRunTypes, pipelinesDomain, type RunAnchor } from "../../src/protocol/pipelines.ts";
import { newEnclave, randomDigest, register, startFixture, type Fixture, type TestEnclave } from "./fixture.ts";

export interface PipelinesFixture {
  f: Fixture;
  contract: Address;
  deployGas: bigint;
  owner: WriterClient;
  /** Sends anchors (a node's host). */
  relayer: WriterClient;
  /** Two active enclaves of two operators, both candidates of `registration`. */
  candidates: TestEnclave[];
  /** Active in the registry, not a candidate. */
  outsider: TestEnclave;
  domain: ReturnType<typeof pipelinesDomain>;
}

export async function startPipelinesFixture(): Promise<PipelinesFixture> {
  const f = await startFixture();
  const { address, gasUsed } = await deployPipelines(f.deployer, f.deployment.registry);
  const candidates = [newEnclave(), newEnclave()];
  const outsider = newEnclave();
  await register(f, candidates[0]!, f.chain.accounts.operators[0]!.address);
  await register(f, candidates[1]!, f.chain.accounts.operators[1]!.address);
  await register(f, outsider, f.chain.accounts.operators[0]!.address);
  return { f, contract: address, deployGas: gasUsed, owner: f.requester, relayer: f.operators[2]!, candidates, outsider, domain: pipelinesDomain(BigInt(f.chain.chainId), address) };
}

export function makeRegistration(p: PipelinesFixture, overrides: Partial<PipelineRegistration> = {}): PipelineRegistration {
  return { pipelineDigest: randomDigest(), candidates: p.candidates.map((e) => e.address), schedule: "*/5 * * * *", ...overrides };
}

export async function registered(p: PipelinesFixture, overrides: Partial<PipelineRegistration> = {}) {
  const registration = makeRegistration(p, overrides);
  return { registration, ...(await registerPipeline(p.owner, p.contract, registration)) };
}

export function makeAnchor(cursorBefore: Hex = zeroHash, overrides: Partial<RunAnchor> = {}): RunAnchor {
  return { runId: randomDigest(), cursorBefore, cursorAfter: randomDigest(), recordsRead: 1000n, recordsWritten: 12n, provenanceDigest: randomDigest(), ...overrides };
}

export function signAnchor(p: PipelinesFixture, signer: TestEnclave, pipelineId: bigint, pipelineDigest: Hex, anchor: RunAnchor): Promise<Hex> {
  return signer.account.signTypedData({ domain: p.domain, types: pipelineRunTypes, primaryType: "Run", message: { pipelineId, pipelineDigest, ...anchor } });
}

export async function anchor(p: PipelinesFixture, pipelineId: bigint, pipelineDigest: Hex, run: RunAnchor, signer: TestEnclave = p.candidates[0]!) {
  return anchorPipelineRun(p.relayer, p.contract, pipelineId, run, await signAnchor(p, signer, pipelineId, pipelineDigest, run));
}
