/**
 * The typed errors of the enclave's chain view: an authorization that does
 * not hold, a proof or header that does not verify, or endpoints that do not
 * agree. Each says what was wrong; none carries a secret (details hold block
 * numbers, hashes, addresses and endpoint names only).
 */
import { CloisterError, type CloisterErrorOptions } from "../../util/base-error.ts";

export type ChainViewErrorCode =
  // authorization signatures
  | "AUTHORIZATION_MALFORMED"
  | "AUTHORIZATION_EXPIRED"
  | "AUTHORIZATION_WRONG_DOMAIN"
  | "AUTHORIZATION_WRONG_SIGNER"
  | "AUTHORIZATION_SCOPE_MISMATCH"
  | "AUTHORIZATION_NONCE_REPLAYED"
  | "APPROVAL_MISSING"
  // block headers
  | "HEADER_MALFORMED"
  | "HEADER_HASH_MISMATCH"
  | "HEADER_CHAIN_BROKEN"
  | "HEADER_UNTRUSTED"
  | "BLOCK_NOT_FINAL"
  | "BLOCK_TOO_OLD"
  // state proofs
  | "PROOF_MALFORMED"
  | "PROOF_ROOT_MISMATCH"
  | "PROOF_INVALID"
  | "PROOF_VALUE_MISMATCH"
  // the header quorum
  | "QUORUM_CONFIG_INVALID"
  | "QUORUM_NOT_REACHED"
  // an endpoint's answer
  | "RPC_FAILED"
  | "RPC_BAD_RESPONSE";

export class ChainViewError extends CloisterError<ChainViewErrorCode> {
  constructor(code: ChainViewErrorCode, shortMessage: string, options?: CloisterErrorOptions) {
    super(code, shortMessage, options);
  }
}

export function isChainViewError(e: unknown): e is ChainViewError {
  return e instanceof ChainViewError;
}
