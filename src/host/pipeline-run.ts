/**
 * The host's side of one pipeline run (issue 14): read the pipeline's chain
 * state, fetch its package and the last cursor state from IPFS (both found by
 * their on-chain digests), have the enclave run it (job kind `pipeline`),
 * publish the new cursor state and the provenance record, and anchor the run
 * (Pipelines.recordRun). The host sees ciphertext, digests and counts only.
 */
import { parseEventLogs, type Address, type Hex } from "viem";
import { pipelinesAbi } from "../chain/abi/Pipelines.ts";
import { anchorPipelineRun } from "../chain/actions/anchor-pipeline-run.ts";
import { readPipeline } from "../chain/actions/read-pipeline.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import { ZERO_CURSOR } from "../protocol/pipeline-package.ts";
import { pipelinePart, statementOfSignedEnvelope } from "../protocol/provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { rawCidOfDigest } from "../storage/raw-cid.ts";
import { CloisterError } from "../util/base-error.ts";

export type PipelineHostErrorCode = "PIPELINE_UNKNOWN" | "PIPELINE_RETIRED" | "PIPELINE_OUTCOME_MALFORMED" | "PIPELINE_PUBLISH_MISMATCH";
export class PipelineHostError extends CloisterError<PipelineHostErrorCode> {}

export interface PipelineRunContext {
  enclave: Pick<EnclaveClient, "runJob">;
  writer: WriterClient;
  store: BlobStore;
  /** The Pipelines contract. */
  contract: Address;
  chainId: bigint;
  evidenceCid: string;
  timeoutMs?: number;
  /** Stop before anchoring (tests of a node dying between load and anchor). */
  beforeAnchor?: () => Promise<void>;
}

export interface PipelineRunOutcome {
  pipelineId: bigint;
  runId: Hex;
  /** The run's number on chain (1 for the first). */
  run: number;
  read: number;
  written: number;
  cursorBefore: Hex;
  cursorAfter: Hex;
  resumed: boolean;
  provenanceCid: string;
  provenanceDigest: Hex;
  enclave: Address;
  transactionHash: Hex;
  gasUsed: bigint;
}

export async function runPipelineOnce(ctx: PipelineRunContext, pipelineId: bigint): Promise<PipelineRunOutcome> {
  const state = await readPipeline(ctx.writer, ctx.contract, pipelineId);
  if (!state.exists) throw new PipelineHostError("PIPELINE_UNKNOWN", `no pipeline ${pipelineId} in the Pipelines contract ${ctx.contract}; create it first (cloister pipeline create)`);
  if (state.retired) throw new PipelineHostError("PIPELINE_RETIRED", `pipeline ${pipelineId} is retired: its owner stopped it`);
  const pkg = await ctx.store.get(rawCidOfDigest(state.pipelineDigest));
  const first = BigInt(state.cursor) === 0n;
  const cursorState = first ? null : await ctx.store.get(rawCidOfDigest(state.cursor));
  const outcome = await ctx.enclave.runJob(
    {
      kind: "pipeline",
      params: { binding: { chainId: ctx.chainId, contract: ctx.contract, pipelineId }, chain: { pipelineDigest: state.pipelineDigest, cursor: first ? ZERO_CURSOR : state.cursor }, package: pkg, cursorState },
      evidenceCid: ctx.evidenceCid,
    },
    { timeoutMs: ctx.timeoutMs ?? 30 * 60_000 },
  );
  const cursor = outcome.outputs.find((o) => o.name === "cursor");
  if (outcome.kind !== "pipeline" || outcome.anchor.type !== "Pipelines.Run" || !cursor) {
    throw new PipelineHostError("PIPELINE_OUTCOME_MALFORMED", `the enclave returned a ${outcome.kind} outcome with a ${outcome.anchor.type} anchor, not a pipeline run's: the enclave and the node run different code`);
  }
  const [cursorCid, provenanceCid] = await ctx.store.putMany([cursor.bytes, outcome.provenance.bytes]);
  if (cursorCid !== cursor.cid || provenanceCid !== outcome.provenance.cid) {
    throw new PipelineHostError("PIPELINE_PUBLISH_MISMATCH", `the store returned CIDs ${cursorCid}, ${provenanceCid} where the enclave computed ${cursor.cid}, ${outcome.provenance.cid}: the IPFS store does not use the fixed profile`);
  }
  const predicate = pipelinePart(statementOfSignedEnvelope(outcome.provenance.bytes));
  if (!predicate) throw new PipelineHostError("PIPELINE_OUTCOME_MALFORMED", "the enclave's provenance record is not a pipeline run's");
  await ctx.beforeAnchor?.();
  const anchor = {
    runId: predicate.runId,
    cursorBefore: predicate.cursorBefore,
    cursorAfter: predicate.cursorAfter,
    recordsRead: BigInt(predicate.source.read),
    recordsWritten: BigInt(predicate.destination.written),
    provenanceDigest: outcome.provenance.digest,
  };
  const tx = await anchorPipelineRun(ctx.writer, ctx.contract, pipelineId, anchor, outcome.anchor.signature);
  const [event] = parseEventLogs({ abi: pipelinesAbi, logs: tx.receipt.logs, eventName: "RunAnchored" });
  return {
    pipelineId,
    runId: predicate.runId,
    run: event?.args.run ?? state.runs + 1,
    read: predicate.source.read,
    written: predicate.destination.written,
    cursorBefore: predicate.cursorBefore,
    cursorAfter: predicate.cursorAfter,
    resumed: predicate.resumed,
    provenanceCid: outcome.provenance.cid,
    provenanceDigest: outcome.provenance.digest,
    enclave: event?.args.enclave ?? ("0x" as Address),
    transactionHash: tx.hash,
    gasUsed: tx.gasUsed,
  };
}
