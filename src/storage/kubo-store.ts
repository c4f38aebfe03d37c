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
import { CID } from "multiformats/cid";
import {
  blobNotFound,
  errorMessage,
  StorageError,
  type BlobStore,
  type GetOptions,
  type StorageErrorCode,
} from "./blob-store.ts";
import { bodyChunks, KuboApiError, KuboConnectionError, ndjsonValues, openKuboHttp, type KuboHttp } from "./kubo-http.ts";
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
/**
 * Cloister's import profile as Kubo add options; pinned so has() holds.
 * stream-channels and progress=false as Kubo's own clients send them: one
 * NDJSON line per file and no progress lines.
 */
const ADD_QUERY = new URLSearchParams({
  "stream-channels": "true",
  progress: "false",
  "cid-version": "1",
  "raw-leaves": "true",
  chunker: KUBO_CHUNKER,
  hash: "sha2-256",
  pin: "true",
});

export function openKuboStore(apiUrl: string, options: KuboStoreOptions = {}): BlobStore {
  const maxConcurrentRequests = options.maxConcurrentRequests ?? 16;
  let node: KuboHttp;
  try {
    node = openKuboHttp(apiUrl, maxConcurrentRequests);
  } catch (err) {
    throw new StorageError("STORAGE_FAILED", `"${apiUrl}" is not a usable Kubo RPC URL. Pass e.g. http://127.0.0.1:5001.`, {
      cause: err,
    });
  }
  const offline = options.offline === true;
  const limiter = createLimiter(maxConcurrentRequests);
  const underWay = new Set<Promise<unknown>>();
  /** Runs a request within the concurrency limit, tracked so close can let it finish. */
  const limit = <T>(request: () => Promise<T>): Promise<T> => {
    const run = limiter(request);
    const forget = (): void => void underWay.delete(run);
    underWay.add(run);
    run.then(forget, forget);
    return run;
  };
  const where = `the IPFS node at ${apiUrl}`;
  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new StorageError("STORAGE_FAILED", `The store for ${apiUrl} is closed. Open it again before use.`);
  };

  /**
   * Adds the blobs in one request and returns the node's CID for each. Kubo
   * answers one line per part, named by the part's filename. A lone blob is
   * sent nameless, as `ipfs add` sends it; in a batch part i is named "i", so
   * each line is tied to its blob without relying on the order of lines.
   */
  async function add(blobs: readonly Uint8Array[], action: string): Promise<string[]> {
    const files = blobs.map((bytes, i) => ({ name: blobs.length === 1 ? "" : String(i), bytes }));
    const [lines, expected] = await Promise.all([
      limit(async () => ndjsonValues(await node.post("add", ADD_QUERY, { files }))).catch((err: unknown) => {
        throw mapNodeError(err, apiUrl, action);
      }),
      Promise.all(blobs.map((bytes) => cidOfBytes(bytes))),
    ]);
    const minted = new Map<string, unknown>();
    for (const line of lines) {
      const { Name, Hash } = line as { Name?: unknown; Hash?: unknown };
      if (typeof Name === "string") minted.set(Name, Hash);
    }
    const lone = blobs.length === 1 ? (lines[0] as { Hash?: unknown } | undefined)?.Hash : undefined;
    return expected.map((cid, i) => {
      const got = blobs.length === 1 ? lone : minted.get(String(i));
      if (typeof got !== "string") {
        throw new StorageError(
          "STORAGE_FAILED",
          `${where} answered an upload of ${blobs.length} blobs without a CID for blob ${i} (it named ${lines.length} files). The node is not a compatible Kubo RPC API; retry, or use put for each blob.`,
        );
      }
      return checkMinted(got, cid, where);
    });
  }

  return {
    async put(bytes) {
      assertOpen();
      const [cid] = await add([bytes], "store a blob");
      return cid as string;
    },

    async putMany(blobs) {
      assertOpen();
      if (blobs.length === 0) return [];
      return add(blobs, `store ${blobs.length} blobs`);
    },

    async get(cid: string, getOptions: GetOptions = {}) {
      assertOpen();
      const parsed = parseBlobCid(cid);
      const { maxBytes, signal } = getOptions;
      const query = new URLSearchParams({ arg: parsed.toString() });
      // One byte past the limit: seeing it proves the blob is too large.
      if (maxBytes !== undefined) query.set("length", String(maxBytes + 1));
      if (offline) query.set("offline", "true");
      let bytes: Uint8Array;
      try {
        bytes = await limit(async () => readAll(bodyChunks(await node.post("cat", query, { signal })), cid, maxBytes));
      } catch (err) {
        throw mapNodeError(err, apiUrl, `read blob ${cid}`, cid);
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
      const query = new URLSearchParams({ arg: parsed.toString(), type: "recursive", stream: "true" });
      try {
        const pins = await limit(async () => ndjsonValues(await node.post("pin/ls", query)));
        return pins.some((pin) => pinnedCids(pin).some((listed) => sameCid(listed, parsed)));
      } catch (err) {
        if (err instanceof KuboApiError && err.message.includes("is not pinned")) return false;
        throw mapNodeError(err, apiUrl, `check for blob ${cid}`, cid);
      }
    },

    // Requests under way finish first; then the connections are closed.
    async close() {
      closed = true;
      await Promise.allSettled([...underWay]);
      node.close();
    },
  };
}

/** The CIDs a pin/ls line lists: `{Cid}` when streamed, `{Keys: {<cid>: …}}` from nodes that do not stream. */
function pinnedCids(line: unknown): unknown[] {
  const { Cid, Keys } = line as { Cid?: unknown; Keys?: unknown };
  if (typeof Keys === "object" && Keys !== null) return Object.keys(Keys);
  return [Cid];
}

function sameCid(text: unknown, cid: CID): boolean {
  if (typeof text !== "string") return false;
  if (text === cid.toString()) return true;
  try {
    return CID.parse(text).equals(cid);
  } catch {
    return false;
  }
}

/** The node's CID for a blob, refused unless it is the profile's. */
function checkMinted(minted: string, expected: CID, where: string): string {
  if (!sameCid(minted, expected)) {
    throw new StorageError(
      "STORAGE_FAILED",
      `${where} stored the blob as ${minted} but Cloister's import profile gives ${expected}. The node's import settings differ (check its Import.* config); use a node with default settings.`,
    );
  }
  return expected.toString();
}

function mapNodeError(err: unknown, apiUrl: string, action: string, cid?: string): unknown {
  if (err instanceof StorageError) return err;
  if (err instanceof Error && err.name === "AbortError") return err;
  if (err instanceof KuboConnectionError) {
    if (err.brokeOff) {
      return new StorageError(
        "STORAGE_UNREACHABLE",
        `The connection to the IPFS node at ${apiUrl} broke off while trying to ${action}: the node stopped, or failed while sending (a damaged blob is reported this way). Retry; if it persists, check the node's logs.`,
        { cause: err },
      );
    }
    return new StorageError(
      "STORAGE_UNREACHABLE",
      `Cannot reach the IPFS node at ${apiUrl} to ${action}: ${err.message}. Check that the node is running (cloister devnet up, or ipfs daemon) and that the URL points at its RPC API.`,
      { cause: err },
    );
  }
  const message = errorMessage(err);
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
