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

export class EnclaveError extends CloisterError<EnclaveErrorCode> {}

export function isEnclaveError(e: unknown): e is EnclaveError {
  return e instanceof EnclaveError;
}
