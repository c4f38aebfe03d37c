/**
 * The pipeline run, the second job kind (issue 14). authorize checks the
 * package the host relayed against the digest registered on chain, unwraps
 * the pipeline's data key (wrapped by the owner to each candidate enclave),
 * opens the spec, and opens the cursor state whose digest is the cursor the
 * last anchored run left. execute extracts past that cursor, transforms,
 * loads with the run marker and seals the next cursor state; anchor signs
 * Pipelines' EIP-712 Run over the counts, the cursors and the provenance.
 *
 * What the host can do and what it gets (docs/pipelines.md, "Rollback"): it
 * chooses which chain state to claim, but the run id is a function of the
 * cursor it claims, so an old cursor names a run the destination has already
 * marked as loaded (nothing is written again) and the chain has already
 * anchored (RunAlreadyAnchored/CursorMismatch); another package has another
 * digest, and the chain recovers the signer over its stored digest.
 */
import { isAddressEqual, type Hex } from "viem";
import { isCryptoError } from "../../crypto/errors.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { CloisterError } from "../../util/base-error.ts";
import { bindingOf, openCursor, openSpec, parsePackage, pipelineRunId, sealCursor, transformDigest, unwrapPipelineKey, ZERO_CURSOR, type PipelineBinding, type PipelineSpec } from "../../protocol/pipeline-package.ts";
import { pipelineRunDigest, pipelinesDomain } from "../../protocol/pipelines.ts";
import { EnclaveError } from "../errors.ts";
import { runPipeline, type RunRecord } from "../pipeline/run-pipeline.ts";
import { provePipelineState } from "../pipeline/chain-check.ts";
import type { EnclaveContext, JobModule } from "./job-module.ts";
import type { PipelineJobParams } from "./params.ts";

export interface AuthorizedPipeline {
  binding: PipelineBinding;
  spec: PipelineSpec;
  dataKey: Uint8Array;
  /** The cursor value to read past (undefined: from the start). */
  after: string | undefined;
  run: number;
  runId: Hex;
  /** The block the chain state was proved at, when the owner named chain view endpoints. */
  provenAt: bigint | null;
}

/** What execute learned that anchor signs (the runtime hands anchor only the outputs and provenance). */
const executed = new WeakMap<PipelineJobParams, { record: RunRecord; runId: Hex }>();

export const pipelineJob: JobModule<"pipeline", PipelineJobParams, AuthorizedPipeline> = {
  kind: "pipeline",
  jobId: (params) => BigInt(pipelineRunId(params.binding.pipelineId, params.chain.cursor)),
  authorize: authorizePipeline,
  async execute(ctx, params, auth) {
    let result;
    try {
      result = await runPipeline(auth.spec, {
        after: auth.after,
        runId: auth.runId,
        sealCursor: (cursor) => sealCursor(auth.dataKey, auth.binding, { pipelineId: auth.binding.pipelineId.toString(), run: auth.run, cursor: cursor ?? auth.after ?? null }),
        ...(ctx.net ? { net: ctx.net } : {}),
      });
    } catch (error) {
      if (error instanceof EnclaveError || !(error instanceof CloisterError)) throw error;
      // Connector and pipeline errors are written for the owner and never quote a password: they may cross the gate.
      throw new EnclaveError("PIPELINE_RUN_FAILED", `pipeline run ${auth.runId} failed (${error.code}): ${error.message}`, { cause: error });
    } finally {
      auth.dataKey.fill(0);
    }
    const { record, cursorState, resumed } = result;
    executed.set(params, { record, runId: auth.runId });
    const { binding, chain } = params;
    const cursorAfter = sha256(cursorState).toLowerCase() as Hex;
    return {
      outputs: [{ name: "cursor", bytes: cursorState }],
      inputs: [{ name: "pipeline", digest: chain.pipelineDigest }, ...(chain.cursor === ZERO_CURSOR ? [] : [{ name: "cursor", digest: chain.cursor }])],
      resourceUse: null,
      error: null,
      kindPredicate: {
        chainId: binding.chainId.toString(),
        contract: binding.contract,
        pipelineId: binding.pipelineId.toString(),
        pipelineDigest: chain.pipelineDigest.toLowerCase() as Hex,
        runId: auth.runId.toLowerCase() as Hex,
        cursorBefore: chain.cursor.toLowerCase() as Hex,
        cursorAfter,
        source: { type: auth.spec.source.type, read: record.read, digest: record.readDigest },
        transform: { kind: auth.spec.transform.kind, digest: (transformDigest(auth.spec.transform)?.toLowerCase() as Hex | undefined) ?? null, rows: record.transformed },
        destination: { type: auth.spec.destination.type, mode: String(auth.spec.destination.mode ?? "append"), written: record.written, digest: record.writtenDigest },
        resumed,
        chainProof: auth.provenAt === null ? null : { block: auth.provenAt.toString() },
      },
    };
  },
  async anchor(ctx, params, run) {
    const done = executed.get(params);
    if (!done) throw new EnclaveError("INTERNAL", "the pipeline run was not executed before its anchor");
    const { binding, chain } = params;
    const hash = pipelineRunDigest(pipelinesDomain(binding.chainId, binding.contract), binding.pipelineId, chain.pipelineDigest, {
      runId: done.runId,
      cursorBefore: chain.cursor,
      cursorAfter: run.outputs[0]!.digest,
      recordsRead: BigInt(done.record.read),
      recordsWritten: BigInt(done.record.written),
      provenanceDigest: run.provenanceDigest,
    });
    return { type: "Pipelines.Run", signature: await ctx.keys.account.sign({ hash }) };
  },
};

/** Every check before any data is touched. */
export async function authorizePipeline(ctx: EnclaveContext, params: PipelineJobParams): Promise<AuthorizedPipeline> {
  const { binding, chain } = params;
  const name = `pipeline ${binding.pipelineId}`;
  const digest = sha256(params.package);
  if (digest.toLowerCase() !== chain.pipelineDigest.toLowerCase()) {
    throw new EnclaveError("PIPELINE_DIGEST_MISMATCH", `${name}: the package's SHA-256 is ${digest}, but the pipeline's registered digest is ${chain.pipelineDigest}: the host relayed another package`);
  }
  let pkg;
  try {
    pkg = parsePackage(params.package);
  } catch (error) {
    throw new EnclaveError("PIPELINE_MALFORMED", `${name}: ${(error as Error).message}`, { cause: error });
  }
  const own = bindingOf(pkg);
  if (own.chainId !== binding.chainId || !isAddressEqual(own.contract, binding.contract) || own.pipelineId !== binding.pipelineId) {
    throw new EnclaveError("PIPELINE_MALFORMED", `${name}: the package is sealed for pipeline ${own.pipelineId} of ${own.contract} on chain ${own.chainId}, not this one`);
  }
  const me = ctx.keys.account.address;
  const wrapped = pkg.wrappedKeys.find((w) => isAddressEqual(w.enclave, me));
  if (!wrapped) throw new EnclaveError("NOT_A_CANDIDATE", `${name} has no key wrapped to this enclave (${me}); the owner named other candidates`);
  let dataKey: Uint8Array;
  let spec: PipelineSpec;
  try {
    dataKey = await unwrapPipelineKey(pkg, wrapped, ctx.keys.hpke.privateKey);
    spec = openSpec(pkg, dataKey);
  } catch (error) {
    if (!isCryptoError(error) && !(error instanceof CloisterError)) throw error;
    throw new EnclaveError("KEY_UNWRAP_FAILED", `${name}: the key wrapped to this enclave did not open the pipeline (wrapped for another pipeline or enclave key, or altered)`, { cause: error });
  }
  const provenAt = spec.chainView ? await checkAgainstChain(spec.chainView, params, name) : null;
  let after: string | undefined;
  let run = 1;
  if (chain.cursor === ZERO_CURSOR || BigInt(chain.cursor) === 0n) {
    if (params.cursorState !== null) throw new EnclaveError("CURSOR_STATE_MISMATCH", `${name} has no anchored run yet, but the host passed a cursor state`);
  } else {
    if (params.cursorState === null) throw new EnclaveError("CURSOR_STATE_MISMATCH", `${name}: the last anchored cursor is ${chain.cursor}, but the host passed no cursor state`);
    const seen = sha256(params.cursorState);
    if (seen.toLowerCase() !== chain.cursor.toLowerCase()) {
      throw new EnclaveError("CURSOR_STATE_MISMATCH", `${name}: the cursor state's SHA-256 is ${seen}, not the last anchored cursor ${chain.cursor}: the host passed an old or altered cursor`);
    }
    try {
      const state = openCursor(dataKey, binding, params.cursorState);
      after = state.cursor ?? undefined;
      run = state.run + 1;
    } catch (error) {
      throw new EnclaveError("CURSOR_STATE_MISMATCH", `${name}: the cursor state does not open with this pipeline's key`, { cause: error });
    }
  }
  return { binding, spec, dataKey, after, run, runId: pipelineRunId(binding.pipelineId, chain.cursor), provenAt };
}

/** The host's claims of digest and cursor against the chain as the enclave proves it; the block proved at. */
async function checkAgainstChain(config: NonNullable<PipelineSpec["chainView"]>, params: PipelineJobParams, name: string): Promise<bigint> {
  const { binding, chain } = params;
  let proven;
  try {
    proven = await provePipelineState(config, binding.chainId, binding.contract, binding.pipelineId);
  } catch (error) {
    throw new EnclaveError("PIPELINE_CHAIN_UNPROVEN", `${name}: the pipeline's chain state could not be proved from the owner's chain view endpoints (${(error as Error).message}); the run waits until they answer`, { cause: error });
  }
  if (!proven.exists || proven.retired) throw new EnclaveError("PIPELINE_CHAIN_UNPROVEN", `${name} is ${proven.exists ? "retired" : "not registered"} at block ${proven.block}`);
  if (proven.pipelineDigest.toLowerCase() !== chain.pipelineDigest.toLowerCase()) {
    throw new EnclaveError("PIPELINE_DIGEST_MISMATCH", `${name}: the host claims digest ${chain.pipelineDigest}, the chain holds ${proven.pipelineDigest} at block ${proven.block}`);
  }
  if (proven.cursor.toLowerCase() !== chain.cursor.toLowerCase()) {
    throw new EnclaveError("CURSOR_STATE_MISMATCH", `${name}: the host claims the last anchored cursor is ${chain.cursor}, but the chain holds ${proven.cursor} at block ${proven.block}: an old or future cursor; refusing before reading the source`);
  }
  return proven.block;
}
