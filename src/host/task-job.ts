/**
 * The host's task relay on the job seam: a task goes to the enclave as a job
 * of kind `task` (runJob / refuseJob), and its outcome comes back in the
 * shape TaskMarket's completeTask takes: the encrypted result, the provenance
 * envelope, their digests and CIDs, and the Completion signature.
 */
import type { JobOutcome, RefuseJobResult } from "../enclave/call-gate.ts";
import type { EnclaveClient } from "../enclave/client.ts";
import type { TaskJobParams } from "../enclave/jobs/params.ts";
import type { Hex } from "viem";
import { CloisterError } from "../util/base-error.ts";

/** A task job's params and the evidence CID its provenance names. */
export type RunTaskParams = TaskJobParams & { evidenceCid: string };

/** A task's outcome, as the node publishes and completes it. */
export interface TaskRun {
  /** The result blob, encrypted to the requester. */
  result: Uint8Array;
  outputDigest: Hex;
  outputCid: string;
  /** The DSSE provenance envelope. */
  provenance: Uint8Array;
  provenanceDigest: Hex;
  provenanceCid: string;
  /** The enclave's EIP-712 Completion signature. */
  signature: Hex;
}

/** The enclave returned an outcome that is not a task's: a bug on one side of the gate. */
export class TaskOutcomeError extends CloisterError<"TASK_OUTCOME_MALFORMED"> {}

export async function runTaskJob(enclave: Pick<EnclaveClient, "runJob">, { evidenceCid, ...params }: RunTaskParams, opts?: { timeoutMs?: number }): Promise<TaskRun> {
  return taskRunOf(await enclave.runJob({ kind: "task", params, evidenceCid }, opts));
}

export function refuseTaskJob(enclave: Pick<EnclaveClient, "refuseJob">, { evidenceCid: _, ...params }: RunTaskParams, attempt: number): Promise<RefuseJobResult> {
  return enclave.refuseJob({ kind: "task", params, attempt });
}

/** The task view of a job outcome: one output (the result), provenance, and a Completion as its anchor. */
export function taskRunOf(outcome: JobOutcome): TaskRun {
  const result = outcome.outputs[0];
  if (outcome.kind !== "task" || outcome.outputs.length !== 1 || !result || outcome.anchor.type !== "TaskMarket.Completion") {
    throw new TaskOutcomeError(
      "TASK_OUTCOME_MALFORMED",
      `the enclave returned a ${outcome.kind} outcome with ${outcome.outputs.length} outputs and a ${outcome.anchor.type} anchor, not a task's: the enclave and the node run different code`,
    );
  }
  return {
    result: result.bytes,
    outputDigest: result.digest,
    outputCid: result.cid,
    provenance: outcome.provenance.bytes,
    provenanceDigest: outcome.provenance.digest,
    provenanceCid: outcome.provenance.cid,
    signature: outcome.anchor.signature,
  };
}
