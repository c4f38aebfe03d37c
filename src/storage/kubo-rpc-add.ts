/**
 * The add command of Cloister's Kubo RPC server, with Kubo's defaults and
 * options: CIDv0 (dag-pb leaves) unless cid-version=1 (raw leaves by
 * default then), size-<n> chunking (256 KiB by default), a balanced DAG of
 * 174 links a node, sha2-256; raw-leaves, only-hash, wrap-with-directory and
 * pin as Kubo reads them. Options that would give CIDs Kubo gives and this
 * node cannot (rabin or buzhash chunking, trickle DAGs, inlining, other hashes,
 * file modes and times) are refused with 400 rather than ignored.
 *
 * An add with Cloister's own import profile (unixfs-profile.ts) goes through
 * the store's put path, which writes a one-chunk blob without the importer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { importer, type ImportCandidate, type ImporterOptions } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import type { CID } from "multiformats/cid";
import type { HeliaStore } from "./helia-store.ts";
import { MultipartError, parseMultipart, type ParsedPart } from "./multipart.ts";
import { CHUNK_SIZE, MAX_LINKS_PER_NODE } from "./unixfs-profile.ts";
import { flag, RpcError, sendNdjson } from "./kubo-rpc-response.ts";
import type { BodyBudget } from "../util/request-body.ts";

/** Kubo's largest block; a chunker asking for more is refused, as Kubo refuses it. */
const MAX_CHUNK_SIZE = 1024 * 1024;

interface AddOptions {
  cidVersion: 0 | 1;
  rawLeaves: boolean;
  chunkSize: number;
  onlyHash: boolean;
  wrapWithDirectory: boolean;
  pin: boolean;
}

export async function handleAdd(store: HeliaStore, bodies: BodyBudget, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const options = addOptions(query);
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw new RpcError(400, "add expects a multipart/form-data body with one part per file.");
  }
  const body = await bodies.read(req, "add request");
  let parts: ParsedPart[];
  try {
    parts = parseMultipart(body, contentType);
  } catch (err) {
    if (!(err instanceof MultipartError)) throw err;
    throw new RpcError(400, `The add request body is not valid multipart/form-data: ${err.message}.`);
  }
  // Every part is checked before any is stored, so a malformed request stores nothing.
  for (const part of parts) {
    if (part.filename === undefined) {
      throw new RpcError(400, `Part "${part.field}" has no filename parameter; send every file as a file part.`);
    }
    if (part.field.includes("?")) {
      throw new RpcError(400, `Part "${part.field}" sets a file mode or time; this node stores files without them, pass none.`);
    }
  }
  if (parts.length === 0) throw new RpcError(400, "The add request holds no file part.");
  const lines = isCloisterProfile(options, parts) ? await addBlobs(store, parts) : await importParts(store, parts, options);
  sendNdjson(res, lines);
}

/** Kubo's add options from the query; 400 for one this node does not implement. */
function addOptions(query: URLSearchParams): AddOptions {
  const version = query.get("cid-version") ?? "0";
  if (version !== "0" && version !== "1") throw new RpcError(400, `cid-version=${version} is not supported: pass 0 or 1.`);
  const cidVersion = version === "1" ? 1 : 0;
  const chunker = query.get("chunker") ?? `size-${CHUNK_SIZE}`;
  const size = /^size-(\d+)$/.exec(chunker);
  const chunkSize = size?.[1] === undefined ? Number.NaN : Number(size[1]);
  if (!(chunkSize >= 1 && chunkSize <= MAX_CHUNK_SIZE)) {
    throw new RpcError(400, `chunker=${chunker} is not supported: this node chunks by size only; pass size-<bytes> with 1 to ${MAX_CHUNK_SIZE} bytes.`);
  }
  const hash = query.get("hash") ?? "sha2-256";
  if (hash !== "sha2-256") throw new RpcError(400, `hash=${hash} is not supported: this node stores sha2-256 blocks only.`);
  for (const name of ["trickle", "inline", "nocopy", "raw", "fscache", "preserve-mode", "preserve-mtime"]) {
    if (flag(query, name, false)) throw new RpcError(400, `${name}=true is not supported by this node; leave it unset.`);
  }
  for (const name of ["mode", "mtime", "to-files"]) {
    if (query.has(name)) throw new RpcError(400, `${name} is not supported by this node; leave it unset.`);
  }
  return {
    cidVersion,
    // Kubo's rule: CIDv1 implies raw leaves unless raw-leaves says otherwise.
    rawLeaves: flag(query, "raw-leaves", cidVersion === 1),
    chunkSize,
    onlyHash: flag(query, "only-hash", false),
    wrapWithDirectory: flag(query, "wrap-with-directory", false),
    pin: flag(query, "pin", true),
  };
}

function isCloisterProfile(options: AddOptions, parts: readonly ParsedPart[]): boolean {
  return (
    options.cidVersion === 1 &&
    options.rawLeaves &&
    options.chunkSize === CHUNK_SIZE &&
    options.pin &&
    !options.onlyHash &&
    !options.wrapWithDirectory &&
    parts.every((part) => part.contentType !== "application/x-directory" && !decodeName(part.filename ?? "").includes("/"))
  );
}

/** Cloister's import profile: one pinned blob a part. */
async function addBlobs(store: HeliaStore, parts: readonly ParsedPart[]): Promise<unknown[]> {
  const added = await store.addMany(parts.map((part) => part.bytes));
  // As Kubo: one line per file, in part order, named by the part's filename (or its CID when the filename is empty).
  return added.map(({ cid, dagSize }, i) => {
    const filename = decodeName(parts[i]?.filename ?? "");
    return { Name: filename === "" ? cid : filename, Hash: cid, Size: dagSize.toString() };
  });
}

/** Any other add: the importer with Kubo's parameters, over the store's blocks (or none, for only-hash). */
async function importParts(store: HeliaStore, parts: readonly ParsedPart[], options: AddOptions): Promise<unknown[]> {
  const candidates: ImportCandidate[] = parts.map((part) => {
    const path = decodeName(part.filename ?? "");
    return part.contentType === "application/x-directory" ? { path } : { path, content: part.bytes };
  });
  const importerOptions: Partial<ImporterOptions> = {
    cidVersion: options.cidVersion,
    rawLeaves: options.rawLeaves,
    leafType: "file",
    chunker: fixedSize({ chunkSize: options.chunkSize }),
    layout: balanced({ maxChildrenPerNode: MAX_LINKS_PER_NODE }),
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: options.wrapWithDirectory,
  };
  const blockstore = options.onlyHash ? { put: async (cid: CID) => cid } : store.node.blockstore;
  const run = async (): Promise<unknown[]> => {
    const lines: { Name: string; Hash: string; Size: string }[] = [];
    const roots: CID[] = [];
    for await (const entry of importer(candidates, blockstore, importerOptions)) {
      const path = entry.path ?? "";
      const cid = entry.cid.toString();
      // Kubo names a nameless file by its CID; the wrapping directory keeps the empty name.
      const name = path === "" && !options.wrapWithDirectory ? cid : path;
      lines.push({ Name: name, Hash: cid, Size: entry.size.toString() });
      if (options.wrapWithDirectory ? path === "" : !path.includes("/")) roots.push(entry.cid);
    }
    // Pinned after every block is written, so a pinned DAG is complete.
    if (options.pin && !options.onlyHash) for (const root of roots) await store.node.pin(root);
    return lines;
  };
  // Under the GC lock, so no block/rm deletes a block between its write and the pin.
  return options.onlyHash ? run() : store.node.gcLock.shared(run);
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
