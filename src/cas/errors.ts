import { CloisterError } from "../util/base-error.ts";

export type CasErrorCode = "NONCE_UNKNOWN" | "EVIDENCE_UNAVAILABLE" | "EVIDENCE_REFUSED";

/** Why the attestation service would not register an enclave. */
export class CasError extends CloisterError<CasErrorCode> {
  /** The verifier's and the policy's reasons, when evidence was refused. */
  readonly reasons: string[];
  constructor(code: CasErrorCode, message: string, reasons: string[] = [], options?: { cause?: unknown }) {
    super(code, message, { cause: options?.cause, details: reasons.length ? { reasons } : undefined });
    this.reasons = reasons;
  }
}
