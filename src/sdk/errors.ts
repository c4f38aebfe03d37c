import type { ResourceUse } from "../protocol/result.ts";
import { CloisterError } from "../util/base-error.ts";

export type TaskCheckCode =
  | "ENCLAVE_NOT_CANDIDATE"
  | "ENCLAVE_NOT_ACTIVE"
  | "COMPLETION_SIGNATURE_INVALID"
  | "OUTPUT_DIGEST_MISMATCH"
  | "PROVENANCE_DIGEST_MISMATCH"
  | "PROVENANCE_INVALID"
  | "POLICY_PINS_NO_CODE"
  | "NO_VERIFIED_ENCLAVE"
  | "NO_OFFER"
  | "TASK_TIMEOUT"
  | "TASK_REFUNDED"
  | "TASK_REFUSED"
  | "TASK_CANCELLED"
  | "TASK_NOT_COMPLETED";

/** A check the requester made on a task's completion failed: the result is not to be trusted. */
export class TaskVerificationError extends CloisterError<TaskCheckCode> {}

/** The task ran, verifiably, and the program itself failed or hit a limit; `programMessage` is its message. */
export class TaskProgramError extends CloisterError {
  readonly programMessage: string;
  readonly taskId: bigint;
  /** What the program used before it failed, from the encrypted result. */
  readonly usage: ResourceUse | undefined;
  constructor(taskId: bigint, code: string, programMessage: string, usage?: ResourceUse) {
    super(code, `task ${taskId} ran but the program failed (${code}): ${programMessage}`, { details: { taskId: taskId.toString() } });
    this.programMessage = programMessage;
    this.taskId = taskId;
    this.usage = usage;
  }
}
