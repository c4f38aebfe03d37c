export type CasErrorCode = "NONCE_UNKNOWN" | "EVIDENCE_UNAVAILABLE" | "EVIDENCE_REFUSED";

/** Why the attestation service would not register an enclave. */
export class CasError extends Error {
  readonly code: CasErrorCode;
  /** The verifier's and the policy's reasons, when evidence was refused. */
  readonly reasons: string[];
  constructor(code: CasErrorCode, message: string, reasons: string[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CasError";
    this.code = code;
    this.reasons = reasons;
  }
}
