import { CloisterError, type CloisterErrorOptions } from "../../util/base-error.ts";

/** What the host side of a clean-room run refuses before or after the enclaves (the enclaves' own refusals: CollabRefusedError). */
export type CollabRunErrorCode = "COLLAB_NOT_DEPLOYED" | "COLLAB_NOT_APPROVED" | "COLLAB_MAX_RUNS" | "COLLAB_VERIFY_FAILED" | "COLLAB_UNKNOWN" | "COLLAB_RUN_TIMEOUT";
export class CollabRunError extends CloisterError<CollabRunErrorCode> {}

/**
 * An enclave refused the run with a typed reason: a policy rule (ROW_LEVEL_OUTPUT, DP_BUDGET_EXCEEDED, …), a
 * connector failure (CONNECTOR_UNREACHABLE, …) or a collaboration check (COLLAB_NOT_APPROVED, COLLAB_PEER_REFUSED,
 * COLLAB_RECIPIENT_PIN_MISMATCH, …). `code` is that reason; `party` the party whose enclave refused.
 */
export type CollabRefusalCode = `${"COLLAB" | "CONNECTOR" | "NET"}_${string}` | `${Uppercase<string>}`;
export class CollabRefusedError extends CloisterError<CollabRefusalCode> {
  readonly party: string;
  constructor(code: CollabRefusalCode, message: string, party: string, options?: CloisterErrorOptions) {
    super(code, message, { ...options, details: { ...options?.details, party } });
    this.party = party;
  }
}

/** Codes that mean the input cannot be read or reached (exit status 2 in the CLI): fix the file or start the source. */
export function isInputProblem(code: string): boolean {
  return code === "COLLAB_FILE_INVALID" || /^CONNECTOR_(UNREACHABLE|FILE_NOT_FOUND|AUTH_FAILED|UNKNOWN_TABLE|BAD_DESCRIPTOR)$/.test(code);
}
