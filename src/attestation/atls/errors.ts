/**
 * Why an attested TLS certificate or peer was refused. `code` is stable for
 * programs; the message says what was wrong and what to do.
 */
import { CloisterError } from "../../util/base-error.ts";

export type AttestedTlsErrorCode =
  /** The peer presented no certificate, or one that is not a usable X.509 certificate. */
  | "ATLS_CERT_INVALID"
  /** The certificate carries no evidence extension (neither TCG DICE tagged evidence nor Gramine legacy). */
  | "ATLS_EVIDENCE_MISSING"
  /** An evidence or endorsement extension could not be decoded. */
  | "ATLS_EVIDENCE_MALFORMED"
  /** The evidence does not bind the certificate's key (pubkey-hash or report_data differ). */
  | "ATLS_KEY_MISMATCH"
  /** The evidence carries another freshness value (nonce claim) than the one expected (stale or replayed). */
  | "ATLS_FRESHNESS_MISMATCH"
  /** The verifier found the evidence not authentic. */
  | "ATLS_EVIDENCE_INVALID"
  /** The evidence is authentic but the verifier's policy refused it (e.g. wrong measurement). */
  | "ATLS_POLICY_REFUSED";

export class AttestedTlsError extends CloisterError<AttestedTlsErrorCode> {
  /** The policy's reasons, for ATLS_POLICY_REFUSED. */
  readonly reasons: string[];

  constructor(code: AttestedTlsErrorCode, message: string, options?: { cause?: unknown; reasons?: string[]; details?: Readonly<Record<string, unknown>> }) {
    super(code, message, {
      ...(options?.cause === undefined ? {} : { cause: options.cause }),
      ...(options?.details ? { details: options.details } : options?.reasons?.length ? { details: { reasons: options.reasons } } : {}),
    });
    this.reasons = options?.reasons ?? [];
  }
}
