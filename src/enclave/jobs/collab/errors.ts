import { CloisterError } from "../../../util/base-error.ts";
import { EnclaveError } from "../../errors.ts";

/**
 * Why a clean-room job refused to run: the terms it was given are not the approved ones, a party has not
 * approved them, a peer enclave failed attestation, a sealed blob is not this run's, or the recipient is not
 * the pinned one. Messages name what failed, never a row value or a credential.
 */
export type CollabJobErrorCode =
  | "COLLAB_TERMS_INVALID"
  | "COLLAB_NOT_APPROVED"
  | "COLLAB_QUERY_NOT_APPROVED"
  | "COLLAB_POLICY_MISMATCH"
  | "COLLAB_DATASETS_MISMATCH"
  | "COLLAB_PEER_REFUSED"
  | "COLLAB_TRANSFER_INVALID"
  | "COLLAB_RECIPIENT_PIN_MISMATCH"
  | "COLLAB_DELIVERY_FAILED"
  | "COLLAB_DATASET_NAME"
  | "COLLAB_CHAIN_UNPROVEN"
  | "COLLAB_RUN_RECORDED"
  | "COLLAB_MAX_RUNS"
  | "COLLAB_RUN_PENDING"
  | "COLLAB_RUN_NOT_RECORDED";

export class CollabJobError extends CloisterError<CollabJobErrorCode> {}

/**
 * The typed errors a clean-room job may report to the host (they carry rules, column names from the approved
 * SQL, redacted urls, never row values), carried across the gate as COLLAB_REFUSED with the typed code first.
 * Anything else stays INTERNAL (the gate's default).
 */
const REPORTABLE = new Set(["CollabJobError", "CleanRoomPolicyError", "ConnectorError", "CollabSealError", "NetError", "ManifestError"]);

export async function reportingRefusals<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof CloisterError && REPORTABLE.has(e.name)) throw new EnclaveError("COLLAB_REFUSED", `${e.code}: ${e.message}`);
    throw e;
  }
}
