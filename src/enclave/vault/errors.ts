/**
 * Errors of the vault enclave (src/enclave/vault/). Like the task runtime's,
 * they cross its gate as { code, message } only; details and causes stay
 * inside. The share library's own errors (VaultShareError: TAMPERED_SHARE,
 * WRONG_OWNER, REQUEST_REPLAYED, ...) cross with their codes too.
 */
import { CloisterError, type CloisterErrorOptions } from "../../util/base-error.ts";

export type VaultEnclaveErrorCode =
  /** The request does not match the gate's schema. */
  | "BAD_REQUEST"
  /** init has not run. */
  | "NOT_INITIALIZED"
  /** The call is not allowed in the enclave's current state (bootstrapping, recovering, serving). */
  | "WRONG_STATE"
  /** The enclave is not a member of any cluster of the vault, by the chain's own record. */
  | "NOT_A_MEMBER"
  /** The token is unknown to the vault contract, burned, or at another version than the one named. */
  | "UNKNOWN_TOKEN"
  /** This enclave holds a newer version of the token's share than the one offered, and keeps it. */
  | "SUPERSEDED_VERSION"
  /** This enclave does not hold a share of the token (not stored, or not fetched yet). */
  | "SHARE_MISSING"
  /** A peer asked for a share and is not the active enclave at the same slot of another cluster. */
  | "PEER_REFUSED"
  /** A sealed vault file does not unseal or does not parse. */
  | "SEALED_STATE_MALFORMED"
  /** A chain read could not be proved (no quorum, bad proof, RPC failure). */
  | "CHAIN_UNAVAILABLE"
  | "INTERNAL";

export class VaultEnclaveError extends CloisterError<VaultEnclaveErrorCode> {
  constructor(code: VaultEnclaveErrorCode, message: string, options?: CloisterErrorOptions) {
    super(code, message, options);
  }
}
