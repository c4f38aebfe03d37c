import { CloisterError } from "../util/base-error.ts";

export type VaultClientErrorCode =
  /** No cluster of the vault has as many slots as the secret has shares. */
  | "NO_CLUSTER"
  /** A slot's host refused or could not take its store envelope: the token was minted but is not stored. */
  | "STORE_INCOMPLETE"
  /** The first cluster did not emit SecretSynced in time. */
  | "NOT_SYNCED"
  /** The token is not in the vault, or was burned. */
  | "UNKNOWN_TOKEN"
  /**
   * Fewer than k slot enclaves answered. `details.reason` is the enclaves' most common refusal code
   * (WRONG_OWNER, REQUEST_EXPIRED, REQUEST_REPLAYED, ...), `details.refusals` each slot's.
   */
  | "RETRIEVAL_REFUSED";

export class VaultClientError extends CloisterError<VaultClientErrorCode> {
  /** For RETRIEVAL_REFUSED: the enclaves' most common refusal code. */
  get reason(): string | undefined {
    return this.details?.reason as string | undefined;
  }
}
