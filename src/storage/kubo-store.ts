/**
 * A BlobStore on a Kubo node (or Cloister's embedded node, kubo-rpc-server.ts)
 * through the Kubo RPC API.
 *
 * The node is not trusted with integrity: put checks that the node's CID is
 * the one the import profile gives for the bytes, and get recomputes the CID
 * of the bytes it receives and refuses them on a mismatch (BLOB_CORRUPTED).
 * A consequence: blobs added to Kubo with other import settings (chunker,
 * CIDv0, no raw leaves) cannot be read through this store.
 */
import { create, type KuboRPCClient } from "kubo-rpc-client";
import type { CID } from "multiformats/cid";
import {
  blobNotFound,
  errorMessage,
  StorageError,
  type BlobStore,
  type GetOptions,
  type StorageErrorCode,
} from "./blob-store.ts";
import { createLimiter } from "../util/limiter.ts";
import { readAll } from "./read-all.ts";
import { cidOfBytes, KUBO_CHUNKER, parseBlobCid } from "./unixfs-profile.ts";

export interface KuboStoreOptions {
  /**
   * Ask the node not to search the network for blocks it lacks, so a
   * missing blob fails at once. Leave off for a real Kubo node that should
   * fetch from its peers. Cloister's embedded node is always offline.
   */
  offline?: boolean;
  /**
   * Requests in flight at once (default 16). More wait their turn: hundreds of
   * simultaneous uploads would overrun the node's connection backlog and be reset.
   */
  maxConcurrentRequests?: number;
}

const CODES: ReadonlySet<string> = new Set<StorageErrorCode>([
  "BLOB_NOT_FOUND",
  "INVALID_CID",
  "BLOB_TOO_LARGE",
  "BLOB_CORRUPTED",
  "STORAGE_UNREACHABLE",
  "STORAGE_FAILED",
]);
/** Cloister's import profile as Kubo add options; pinned so has() holds. */
const ADD_OPTIONS = { cidVersion: 1, rawLeaves: true, chunker: KUBO_CHUNKER, hashAlg: "sha2-256", pin: true } as const;
const NETWORK_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN"]);

export function openKuboStore(apiUrl: string, options: KuboStoreOptions = {}): BlobStore {
  let client: KuboRPCClient;
  try {
    client = create({ url: apiUrl });
  } catch (err) {
    throw new StorageError("STORAGE_FAILED", `"${apiUrl}" is not a usable Kubo RPC URL. Pass e.g. http://127.0.0.1:5001.`, {
      cause: err,
    });
  }
  const searchParams = new URLSearchParams(options.offline === true ? { offline: "true" } : {});
  const limit = createLimiter(options.maxConcurrentRequests ?? 16);
  const where = `the IPFS node at ${apiUrl}`;
  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new StorageError("STORAGE_FAILED", `The store for ${apiUrl} is closed. Open it again before use.`);
  };

  return {
    async put(bytes) {
      assertOpen();
      const [added, expected] = await Promise.all([
        limit(() => client.add(bytes, ADD_OPTIONS)).catch((err: unknown) => {
          throw mapClientError(err, apiUrl, "store a blob");
        }),
        cidOfBytes(bytes),
      ]);
      return checkMinted(added.cid, expected, where);
    },

    async putMany(blobs) {
      assertOpen();
      if (blobs.length === 0) return [];
      // One multipart request, one part per blob. Kubo answers one line per
      // part named by its filename; the index as filename ties each line to
      // its blob without relying on the order of the lines.
      const parts = blobs.map((content, i) => ({ path: String(i), content }));
      const [added, expected] = await Promise.all([
        limit(async () => {
          const lines: { path: string; cid: CID }[] = [];
          for await (const line of client.addAll(parts, ADD_OPTIONS)) lines.push(line);
          return lines;
        }).catch((err: unknown) => {
          throw mapClientError(err, apiUrl, `store ${blobs.length} blobs`);
        }),
        Promise.all(blobs.map((bytes) => cidOfBytes(bytes))),
      ]);
      const minted = new Map(added.map((line) => [line.path, line.cid]));
      return expected.map((cid, i) => {
        const got = minted.get(String(i));
        if (got === undefined) {
          throw new StorageError(
            "STORAGE_FAILED",
            `${where} answered an upload of ${blobs.length} blobs without a CID for blob ${i} (it named ${added.length} files). The node is not a compatible Kubo RPC API; retry, or use put for each blob.`,
          );
        }
        return checkMinted(got, cid, where);
      });
    },

    async get(cid: string, getOptions: GetOptions = {}) {
      assertOpen();
      const parsed = parseBlobCid(cid);
      const { maxBytes, signal } = getOptions;
      let bytes: Uint8Array;
      try {
        // One byte past the limit: seeing it proves the blob is too large.
        const length = maxBytes === undefined ? undefined : maxBytes + 1;
        bytes = await limit(() => readAll(client.cat(parsed, { length, signal, searchParams }), cid, maxBytes));
      } catch (err) {
        throw mapClientError(err, apiUrl, `read blob ${cid}`, cid);
      }
      const actual = await cidOfBytes(bytes);
      if (!actual.equals(parsed)) {
        throw new StorageError(
          "BLOB_CORRUPTED",
          `${where} returned bytes for ${cid} that hash to ${actual}: the node returned wrong data, or the blob was added with other import settings. Do not use these bytes.`,
        );
      }
      return bytes;
    },

    async has(cid) {
      assertOpen();
      const parsed = parseBlobCid(cid);
      try {
        for await (const pin of client.pin.ls({ paths: [parsed], type: "recursive" })) {
          if (pin.cid.equals(parsed)) return true;
        }
        return false;
      } catch (err) {
        if (errorMessage(err).includes("is not pinned")) return false;
        throw mapClientError(err, apiUrl, `check for blob ${cid}`, cid);
      }
    },

    async close() {
      closed = true;
    },
  };
}

/** The node's CID for a blob, refused unless it is the profile's. */
function checkMinted(minted: CID, expected: CID, where: string): string {
  if (!minted.equals(expected)) {
    throw new StorageError(
      "STORAGE_FAILED",
      `${where} stored the blob as ${minted} but Cloister's import profile gives ${expected}. The node's import settings differ (check its Import.* config); use a node with default settings.`,
    );
  }
  return expected.toString();
}

function mapClientError(err: unknown, apiUrl: string, action: string, cid?: string): unknown {
  if (err instanceof StorageError) return err;
  if (err instanceof Error && err.name === "AbortError") return err;
  const message = errorMessage(err);
  if (message === "terminated") {
    return new StorageError(
      "STORAGE_UNREACHABLE",
      `The connection to the IPFS node at ${apiUrl} broke off while trying to ${action}: the node stopped, or failed while sending (a damaged blob is reported this way). Retry; if it persists, check the node's logs.`,
      { cause: err },
    );
  }
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  if ((cause?.code !== undefined && NETWORK_ERRORS.has(cause.code)) || message === "fetch failed") {
    return new StorageError(
      "STORAGE_UNREACHABLE",
      `Cannot reach the IPFS node at ${apiUrl} to ${action}: ${errorMessage(cause ?? err)}. Check that the node is running (cloister devnet up, or ipfs daemon) and that the URL points at its RPC API.`,
      { cause: err },
    );
  }
  // Cloister's embedded node prefixes its errors with their code.
  const prefixed = /^([A-Z_]+): ([\s\S]*)$/.exec(message);
  const code = prefixed?.[1] !== undefined && CODES.has(prefixed[1]) ? (prefixed[1] as StorageErrorCode) : undefined;
  if (code !== undefined && code !== "BLOB_NOT_FOUND") {
    return new StorageError(code, prefixed?.[2] ?? message, { cause: err });
  }
  if (cid !== undefined && (code === "BLOB_NOT_FOUND" || /not found|could not find/i.test(message))) {
    const e = blobNotFound(cid, `the IPFS node at ${apiUrl}`);
    e.cause = err;
    return e;
  }
  return new StorageError("STORAGE_FAILED", `The IPFS node at ${apiUrl} failed to ${action}: ${message}`, { cause: err });
}
