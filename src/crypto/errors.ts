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

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CryptoError";
    this.code = code;
  }
}

export function isCryptoError(e: unknown): e is CryptoError {
  return e instanceof CryptoError;
}
