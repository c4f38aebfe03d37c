import { CloisterError } from "../util/base-error.ts";

/**
 * The one error type of src/crypto. `code` is stable and meant for programs;
 * `message` says what was wrong and what it most likely means.
 */

export type CryptoErrorCode =
  | "DECRYPTION_FAILED"
  | "MALFORMED_CIPHERTEXT"
  | "TRUNCATED"
  | "INVALID_KEY"
  | "INVALID_ARGUMENT";

export class CryptoError extends CloisterError<CryptoErrorCode> {}

export function isCryptoError(e: unknown): e is CryptoError {
  return e instanceof CryptoError;
}
