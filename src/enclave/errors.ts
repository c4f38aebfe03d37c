import { CloisterError } from "../util/base-error.ts";

/**
 * Errors the enclave reports through the call gate. Inside the enclave they
 * are thrown; they cross the gate as { code, message } only (details and
 * cause stay inside) and the client re-throws them as EnclaveError with the
 * same code.
 */

export type EnclaveErrorCode =
  // integrity of the task (the host must not complete it)
  | "MALFORMED_ENVELOPE"
  | "ENVELOPE_DIGEST_MISMATCH"
  | "PROGRAM_DIGEST_MISMATCH"
  | "INPUT_DIGEST_MISMATCH"
  | "TASK_MISMATCH"
  | "NOT_A_CANDIDATE"
  | "KEY_UNWRAP_FAILED"
  | "INPUT_DECRYPTION_FAILED"
  | "RESULT_KEY_INVALID"
  // a pipeline run (src/enclave/jobs/pipeline.ts)
  | "PIPELINE_DIGEST_MISMATCH"
  | "PIPELINE_MALFORMED"
  | "CURSOR_STATE_MISMATCH"
  | "PIPELINE_RUN_FAILED"
  | "PIPELINE_CHAIN_UNPROVEN"
  // operate (granted manipulation): OPERATE_ERROR_CODES below
  | OperateErrorCode
  // a clean-room job refused to run or deliver: the message starts with the typed reason ("ROW_LEVEL_OUTPUT: …")
  | "COLLAB_REFUSED"
  // refuseJob: the job runs, or its failure may be the host's (no refusal is signed)
  | "REFUSAL_UNFOUNDED"
  // enclave state
  | "NOT_INITIALIZED"
  | "UNSEAL_FAILED"
  | "SEALED_STATE_MALFORMED"
  | "SEALING_UNAVAILABLE"
  | "ATTESTATION_UNAVAILABLE"
  | "ATTESTATION_FAILED"
  // the gate itself
  | "BAD_REQUEST"
  | "BAD_RESPONSE"
  | "TIMEOUT"
  | "ENCLAVE_EXITED"
  | "INTERNAL";

/** The refusals and failures of a granted manipulation (jobs/operate.ts): each names the grant's limit or the step that failed. */
export const OPERATE_ERROR_CODES = [
  "GRANT_NOT_FOUND", "GRANT_SIGNATURE_INVALID", "GRANT_TERMS_MISMATCH", "GRANT_REVOKED", "GRANT_NOT_YET_VALID", "GRANT_EXPIRED", "GRANT_USED_UP",
  "GRANT_WRONG_OPERATOR", "GRANT_STATEMENT_NOT_GRANTED", "GRANT_OPERATION_NOT_GRANTED", "GRANT_DATASET_NOT_GRANTED", "GRANT_TABLE_NOT_GRANTED",
  "GRANT_STATEMENT_UNSUPPORTED", "GRANT_CHAIN_UNPROVEN", "GRANT_USE_ALREADY_APPLIED", "OPERATE_DATASET_UNREACHABLE", "OPERATE_STATEMENT_FAILED",
  "OPERATE_RESULT_KEY_MISSING",
] as const;
export type OperateErrorCode = (typeof OPERATE_ERROR_CODES)[number];

export class EnclaveError extends CloisterError<EnclaveErrorCode> {}

export function isEnclaveError(e: unknown): e is EnclaveError {
  return e instanceof EnclaveError;
}
