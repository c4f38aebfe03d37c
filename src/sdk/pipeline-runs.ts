/**
 * Pipeline runs as an auditor finds them: by run id alone (RunAnchored
 * indexes it), checked with verifyPipelineRun, as a verdict of named checks.
 */
import type { Address, Client, Hex } from "viem";
import { getContractEvents } from "viem/actions";
import type { Policy } from "../attestation/policy.ts";
import { pipelinesAbi } from "../chain/abi/Pipelines.ts";
import type { ProvenanceStatement } from "../protocol/provenance.ts";
import { unverifiedStatement } from "../protocol/provenance.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { listVerifiedEnclaves } from "./enclaves.ts";
import { PipelineVerificationError, verifyPipelineRun } from "./pipelines.ts";

/** The pipeline that anchored `runId`, or undefined. */
export async function findPipelineRun(reader: Client, contract: Address, runId: Hex, fromBlock = 0n): Promise<bigint | undefined> {
  const [log] = await getContractEvents(reader, { address: contract, abi: pipelinesAbi, eventName: "RunAnchored", args: { runId }, fromBlock, toBlock: "latest", strict: true });
  return log?.args.pipelineId;
}

export interface RunVerdict {
  ok: boolean;
  pipelineId: bigint;
  statement?: ProvenanceStatement;
  checks: { name: string; ok: boolean; detail: string }[];
}

export async function verifyRunById(o: { reader: Client; store: BlobStore; contract: Address; registry: Address; policy: Policy; runId: Hex; pipelineId: bigint }): Promise<RunVerdict> {
  const { verified } = await listVerifiedEnclaves({ reader: o.reader, registry: o.registry, fromBlock: 0n, store: o.store, policy: o.policy });
  try {
    const v = await verifyPipelineRun({ reader: o.reader, store: o.store, contract: o.contract, pipelineId: o.pipelineId, runId: o.runId, enclaves: verified });
    const statement = unverifiedStatement(await o.store.get(v.provenanceCid));
    return { ok: true, pipelineId: o.pipelineId, statement, checks: v.checks.map((detail, i) => ({ name: ["anchor", "enclave", "provenance signature", "record matches anchor"][i] ?? "check", ok: true, detail })) };
  } catch (error) {
    if (!(error instanceof PipelineVerificationError)) throw error;
    return { ok: false, pipelineId: o.pipelineId, checks: [{ name: error.code, ok: false, detail: error.message }] };
  }
}
