/**
 * The storage interface every consumer uses: immutable blobs addressed by
 * CIDv1. Two implementations share it and give the same CID for the same
 * bytes: the embedded Helia store (helia-store.ts) and a Kubo node over its
 * RPC API (kubo-store.ts).
 *
 * Security: a CID names content, it does not keep it secret. Blobs are
 * expected to be ciphertext or public programs; the stores add no encryption.
 */
import { CloisterError } from "../util/base-error.ts";

export interface GetOptions {
  /** Refuse blobs larger than this many bytes with BLOB_TOO_LARGE. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface BlobStore {
  /** Stores the bytes and returns their CIDv1 (UnixFS file, raw leaves). */
  put(bytes: Uint8Array): Promise<string>;
  /**
   * Stores several blobs at once (one request to a remote node) and returns
   * their CIDs in input order, each the CID put would return for those bytes.
   * All or nothing for the caller: on error no CID is returned, though some
   * of the blobs may have been stored.
   */
  putMany(blobs: readonly Uint8Array[]): Promise<string[]>;
  /** Returns the blob's bytes, verified against the CID. */
  get(cid: string, options?: GetOptions): Promise<Uint8Array>;
  /** True when the whole blob is stored (pinned) here. */
  has(cid: string): Promise<boolean>;
  close(): Promise<void>;
}

export type StorageErrorCode =
  | "BLOB_NOT_FOUND"
  | "INVALID_CID"
  | "BLOB_TOO_LARGE"
  | "BLOB_CORRUPTED"
  | "STORAGE_UNREACHABLE"
  | "STORAGE_FAILED";

/**
 * The one error type of src/storage. `code` is stable and meant for programs;
 * `message` says what was wrong and what to do about it.
 */
export class StorageError extends CloisterError<StorageErrorCode> {}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}

export function blobNotFound(cid: string, where: string): StorageError {
  return new StorageError(
    "BLOB_NOT_FOUND",
    `Blob ${cid} is not stored in ${where}. Check the CID, and that the blob was uploaded to this store (or a node it can reach).`,
  );
}

export function blobTooLarge(cid: string, maxBytes: number): StorageError {
  return new StorageError(
    "BLOB_TOO_LARGE",
    `Blob ${cid} is larger than the allowed ${maxBytes} bytes. Raise maxBytes if the blob is expected to be this large.`,
  );
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
