/**
 * The owner's side of pipelines (issue 14): create one (seal the spec to the
 * candidate enclaves, publish the package, register its digest), and verify
 * a run from the chain and IPFS alone.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toHex, type Address, type Client, type Hex } from "viem";
import { registerPipeline } from "../chain/actions/register-pipeline.ts";
import { readPipeline, readPipelineRuns, type AnchoredRun } from "../chain/actions/read-pipeline.ts";
import type { WriterClient } from "../chain/clients.ts";
import { sha256 } from "../crypto/sha256.ts";
import { sealPipeline, type PipelineSpec } from "../protocol/pipeline-package.ts";
import { pipelineId as pipelineIdOf } from "../protocol/pipelines.ts";
import { pipelinePart, verifyProvenance, type JobPredicate } from "../protocol/provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { rawCidOfDigest } from "../storage/raw-cid.ts";
import { CloisterError } from "../util/base-error.ts";
import { fromHex } from "../crypto/bytes.ts";
import type { VerifiedEnclave } from "./enclaves.ts";

export type PipelineCheckCode = "RUN_NOT_ANCHORED" | "RUN_ENCLAVE_UNVERIFIED" | "RUN_PROVENANCE_INVALID" | "RUN_RECORD_MISMATCH";
export class PipelineVerificationError extends CloisterError<PipelineCheckCode> {}

export interface CreatedPipeline {
  pipelineId: bigint;
  pipelineDigest: Hex;
  packageCid: string;
  transactionHash: Hex;
  gasUsed: bigint;
}

/** Seals `spec` to `candidates` (verified enclaves: their keys come from evidence the owner checked), publishes and registers it. */
export async function createPipeline(params: { writer: WriterClient; store: BlobStore; contract: Address; spec: PipelineSpec; candidates: readonly Pick<VerifiedEnclave, "signer" | "hpkePublicKey">[]; salt?: Hex }): Promise<CreatedPipeline> {
  const { writer, store, contract, spec } = params;
  const salt = params.salt ?? toHex(crypto.getRandomValues(new Uint8Array(32)));
  const chainId = BigInt(writer.chain.id);
  const owner = writer.account.address;
  const pipelineId = pipelineIdOf(chainId, contract, owner, salt);
  const pkg = await sealPipeline(spec, { chainId, contract, pipelineId, owner }, params.candidates.map((c) => ({ enclave: c.signer, hpkePublicKey: c.hpkePublicKey })));
  const packageCid = await store.put(pkg);
  const pipelineDigest = sha256(pkg);
  const tx = await registerPipeline(writer, contract, { pipelineDigest, candidates: params.candidates.map((c) => c.signer), schedule: spec.schedule ?? "" }, salt);
  return { pipelineId: tx.pipelineId, pipelineDigest, packageCid, transactionHash: tx.hash, gasUsed: tx.gasUsed };
}

/**
 * The first run anchored in a block after `afterBlock` (the block of an owner's request: the run that serves it),
 * read every `pollMs` until `timeoutMs` has passed; undefined when none was anchored by then.
 */
export async function waitForRunAfter(params: { reader: Client; contract: Address; pipelineId: bigint; afterBlock: bigint; timeoutMs: number; pollMs?: number }): Promise<AnchoredRun | undefined> {
  const deadline = Date.now() + params.timeoutMs;
  for (;;) {
    const [run] = await readPipelineRuns(params.reader, params.contract, params.pipelineId, params.afterBlock + 1n);
    if (run || Date.now() >= deadline) return run;
    await sleep(params.pollMs ?? 500);
  }
}

export interface VerifiedRun {
  run: AnchoredRun;
  predicate: JobPredicate<"pipeline">["pipeline"];
  provenanceCid: string;
  checks: string[];
}

/**
 * Checks one anchored run: the anchor is on chain (the contract checked the candidate's signature, the cursor
 * chain and the run id's uniqueness), the provenance record at its digest is signed by that enclave's
 * provenance key (from evidence the caller verified), and says what the anchor says.
 */
export async function verifyPipelineRun(params: { reader: Client; store: BlobStore; contract: Address; pipelineId: bigint; runId?: Hex; enclaves: readonly VerifiedEnclave[]; fromBlock?: bigint }): Promise<VerifiedRun> {
  const state = await readPipeline(params.reader, params.contract, params.pipelineId);
  const runs = await readPipelineRuns(params.reader, params.contract, params.pipelineId, params.fromBlock ?? 0n);
  const run = params.runId ? runs.find((r) => r.runId.toLowerCase() === params.runId!.toLowerCase()) : runs.at(-1);
  if (!state.exists || !run) throw new PipelineVerificationError("RUN_NOT_ANCHORED", `no anchored run ${params.runId ?? "(latest)"} of pipeline ${params.pipelineId} in ${params.contract}`);
  const checks = [`run ${run.run} anchored on chain in ${run.transactionHash} by candidate enclave ${run.enclave} (the contract checked its EIP-712 Run signature and that it started from the cursor the previous run left)`];
  const enclave = params.enclaves.find((e) => e.signer.toLowerCase() === run.enclave.toLowerCase());
  if (!enclave) throw new PipelineVerificationError("RUN_ENCLAVE_UNVERIFIED", `the enclave ${run.enclave} that anchored run ${run.runId} is not among the enclaves verified under your policy`);
  checks.push(`enclave ${enclave.signer} verified under the policy (measurement ${enclave.claims.measurement.slice(0, 16)}…${enclave.claims.simulated ? ", SIMULATED TEE" : ""})`);
  const provenanceCid = rawCidOfDigest(run.provenanceDigest);
  const envelope = await params.store.get(provenanceCid);
  let predicate;
  try {
    predicate = pipelinePart(verifyProvenance(envelope, fromHex(enclave.provenanceKey)));
  } catch (cause) {
    throw new PipelineVerificationError("RUN_PROVENANCE_INVALID", `the provenance record ${provenanceCid} of run ${run.runId} is not signed by enclave ${enclave.signer}: ${(cause as Error).message}`, { cause });
  }
  if (!predicate) throw new PipelineVerificationError("RUN_PROVENANCE_INVALID", `the provenance record ${provenanceCid} is not a pipeline run's`);
  checks.push(`provenance ${provenanceCid} signed by the enclave's attested provenance key`);
  const mismatches = [
    predicate.pipelineId !== params.pipelineId.toString() && "pipeline id",
    predicate.contract.toLowerCase() !== params.contract.toLowerCase() && "contract",
    predicate.runId !== run.runId.toLowerCase() && "run id",
    predicate.cursorBefore !== run.cursorBefore.toLowerCase() && "cursor before",
    predicate.cursorAfter !== run.cursorAfter.toLowerCase() && "cursor after",
    BigInt(predicate.source.read) !== run.recordsRead && "records read",
    BigInt(predicate.destination.written) !== run.recordsWritten && "records written",
    predicate.pipelineDigest !== state.pipelineDigest.toLowerCase() && "pipeline digest",
  ].filter(Boolean);
  if (mismatches.length > 0) throw new PipelineVerificationError("RUN_RECORD_MISMATCH", `the provenance record of run ${run.runId} disagrees with its anchor on: ${mismatches.join(", ")}`);
  checks.push(`provenance agrees with the anchor: run id, cursors ${run.cursorBefore.slice(0, 10)}… → ${run.cursorAfter.slice(0, 10)}…, read ${run.recordsRead}, written ${run.recordsWritten}, pipeline digest`);
  return { run, predicate, provenanceCid, checks };
}
