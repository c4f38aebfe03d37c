import { CloisterError } from "../../util/base-error.ts";

/**
 * The one error type of the attestation layer. `code` is stable and meant for
 * programs; `message` says what was wrong in words meant for people.
 */

export type AttestationErrorCode =
  | "QUOTE_MALFORMED"
  | "QUOTE_UNSUPPORTED"
  | "QUOTE_SIGNATURE_INVALID"
  | "QE_REPORT_SIGNATURE_INVALID"
  | "ATTESTATION_KEY_BINDING_INVALID"
  | "QE_IDENTITY_MISMATCH"
  | "CERT_MALFORMED"
  | "CERT_CHAIN_INVALID"
  | "CERT_EXPIRED"
  | "CERT_NOT_YET_VALID"
  | "CERT_REVOKED"
  | "UNTRUSTED_ROOT"
  | "CRL_INVALID"
  | "CRL_EXPIRED"
  | "CRL_NOT_YET_VALID"
  | "COLLATERAL_MISSING"
  | "COLLATERAL_MALFORMED"
  | "COLLATERAL_MISMATCH"
  | "COLLATERAL_EXPIRED"
  | "COLLATERAL_NOT_YET_VALID"
  | "COLLATERAL_SIGNATURE_INVALID"
  | "COLLATERAL_FETCH_FAILED"
  | "TCB_LEVEL_UNMATCHED"
  | "REPORT_MALFORMED"
  | "REPORT_SIGNATURE_INVALID"
  | "POLICY_INVALID"
  | "UNSUPPORTED_TEE";

export class AttestationError extends CloisterError<AttestationErrorCode> {}
