/**
 * Retries with exponential backoff for the host's calls to the chain RPC and
 * to IPFS. Only transient failures (the endpoint is unreachable, a request
 * timed out) are retried: a contract revert or an enclave error says the
 * request itself is wrong, and repeating it cannot help.
 */
import { BaseError, HttpRequestError, SocketClosedError, TimeoutError, WebSocketRequestError } from "viem";
import { decodeContractRevert } from "../chain/contract-error.ts";
import { isEnclaveError } from "../enclave/errors.ts";
import { StorageError } from "../storage/blob-store.ts";
import { backoffDelay } from "../util/backoff.ts";

export interface RetryOptions {
  /** What is being attempted, for messages, e.g. "acceptTask 42". */
  what: string;
  /** Which failures to retry; defaults to isTransientError. */
  isRetryable?: (error: unknown) => boolean;
  /** First delay in ms (default 200); it doubles per attempt. */
  baseMs?: number;
  /** Largest delay in ms (default 5000). */
  maxMs?: number;
  /** Attempts in all, the first included (default 8); the last error is rethrown after them. */
  maxAttempts?: number;
  /** Aborting stops waiting and rethrows the signal's reason. */
  signal?: AbortSignal;
  onRetry?: (info: { what: string; error: unknown; attempt: number; delayMs: number }) => void;
}

/** Node socket and undici error codes that mean "could not reach the other side (this time)". */
const transientCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "STORAGE_UNREACHABLE",
]);

/** True when `error` (or an error in its cause chain) is a network or timeout failure worth retrying. */
export function isTransientError(error: unknown): boolean {
  if (decodeContractRevert(error) !== undefined || isEnclaveError(error)) return false;
  if (error instanceof StorageError) return error.code === "STORAGE_UNREACHABLE";
  if (error instanceof BaseError) {
    const transport = error.walk(
      (e) => e instanceof HttpRequestError || e instanceof TimeoutError || e instanceof SocketClosedError || e instanceof WebSocketRequestError,
    );
    if (transport) return true;
  }
  const seen = new Set<unknown>();
  for (let e: unknown = error; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && transientCodes.has(code)) return true;
    if (e.name === "TimeoutError" || (e instanceof TypeError && e.message === "fetch failed")) return true;
  }
  return false;
}

export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { what, isRetryable = isTransientError, baseMs = 200, maxMs = 5_000, maxAttempts = 8, signal, onRetry } = options;
  if (!(maxAttempts >= 1)) throw new RangeError(`withRetry(${what}): maxAttempts must be at least 1, got ${maxAttempts}`);
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await operation(attempt);
    } catch (error) {
      if (signal?.aborted || attempt >= maxAttempts || !isRetryable(error)) throw error;
      const delayMs = backoffDelay(attempt, baseMs, maxMs);
      onRetry?.({ what, error, attempt, delayMs });
      await sleep(delayMs, signal);
    }
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
