import { CloisterError } from "../util/base-error.ts";

/**
 * The one error type of the vault share library (split, commitments,
 * envelopes, retrieval requests, re-sharing). `details` never carry a share,
 * a salt or a secret: only slots, versions, token ids and public digests.
 */
export type VaultShareErrorCode =
  /** Bad parameters: threshold, share count, secret size, slot index, version. */
  | "INVALID_ARGUMENT"
  /** A share set description that does not hash to the root the chain holds. */
  | "ROOT_MISMATCH"
  /** A share whose bytes do not match the commitment of its slot: corrupted or substituted. */
  | "TAMPERED_SHARE"
  /** An envelope sealed for another token, version or slot (or for another recipient key): it does not open here. */
  | "WRONG_BINDING"
  /** Fewer valid shares than the threshold. */
  | "NOT_ENOUGH_SHARES"
  /** Valid shares that recombine to a secret that does not match its commitment (a dishonest dealer). */
  | "SECRET_MISMATCH"
  /** A retrieval request that is not well-formed or whose signature recovers to no signer. */
  | "REQUEST_MALFORMED"
  /** A retrieval request signed for another vault contract or chain. */
  | "REQUEST_WRONG_DOMAIN"
  /** A retrieval request for another token. */
  | "REQUEST_WRONG_TOKEN"
  /** A retrieval request not signed by the token's current owner of record. */
  | "WRONG_OWNER"
  /** A retrieval request outside its block window (expired, not yet valid, or a window longer than allowed). */
  | "REQUEST_EXPIRED"
  /** A retrieval request whose nonce this enclave already served. */
  | "REQUEST_REPLAYED";

export class VaultShareError extends CloisterError<VaultShareErrorCode> {}

export function isVaultShareError(e: unknown): e is VaultShareError {
  return e instanceof VaultShareError;
}
