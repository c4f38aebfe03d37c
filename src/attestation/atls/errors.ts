import { CloisterError } from "../../util/base-error.ts";

/**
 * Why an attested TLS peer was refused. `code` is stable for programs; the
 * message says what was wrong and what to do.
 */
export type AttestedTlsErrorCode =
  /** The peer presented no certificate, or one that is not a usable X.509 ECDSA certificate. */
  | "ATLS_CERT_INVALID"
  /** The certificate carries no evidence extension (neither TCG DICE nor Gramine legacy). */
  | "ATLS_EVIDENCE_MISSING"
  /** An evidence or collateral extension could not be decoded. */
  | "ATLS_EVIDENCE_MALFORMED"
  /** The evidence was made for another public key than the certificate's. */
  | "ATLS_KEY_MISMATCH"
  /** The evidence carries another freshness value than the one expected (stale or replayed). */
  | "ATLS_FRESHNESS_MISMATCH"
  /** The verifier found the evidence not authentic. */
  | "ATLS_EVIDENCE_INVALID"
  /** The evidence is authentic but the verifier's policy refused it (e.g. wrong measurement). */
  | "ATLS_POLICY_REFUSED";

export class AttestedTlsError extends CloisterError<AttestedTlsErrorCode> {
  /** The policy's reasons, for ATLS_POLICY_REFUSED. */
  readonly reasons: string[];

  constructor(code: AttestedTlsErrorCode, message: string, options?: { cause?: unknown; reasons?: string[] }) {
    super(code, message, { cause: options?.cause, details: options?.reasons?.length ? { reasons: options.reasons } : undefined });
    this.reasons = options?.reasons ?? [];
  }
}
