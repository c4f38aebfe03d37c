/**
 * CIDs, /ipfs/ paths and DAG links as the Kubo RPC commands take them: any
 * CID version and the codecs Kubo ships (dag-pb, raw, dag-cbor, dag-json),
 * but sha2-256 only, because every block read is verified against its hash
 * (checked-blockstore.ts).
 */
import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import * as dagPb from "@ipld/dag-pb";
import { createUnsafe } from "multiformats/block";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { errorMessage, StorageError } from "./blob-store.ts";

const SHA2_256 = 0x12;

export interface IpldCodec {
  readonly name: string;
  readonly code: number;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

/** The block codecs this node decodes, by multicodec code. */
export const CODECS: ReadonlyMap<number, IpldCodec> = new Map<number, IpldCodec>(
  [dagPb, raw, dagCbor, dagJson].map((codec) => [codec.code, codec as IpldCodec]),
);

/** A codec by Kubo's name for it (block put's cid-codec, dag get's output-codec). */
export function codecNamed(name: string): IpldCodec | undefined {
  return [...CODECS.values()].find((codec) => codec.name === name);
}

export interface IpfsPath {
  cid: CID;
  /** The path below the CID, without a leading slash; "" for the CID itself. */
  rest: string;
}

/** `<cid>`, `<cid>/a/b`, `/ipfs/<cid>/a/b`; INVALID_CID for anything else. */
export function parseIpfsPath(arg: string): IpfsPath {
  const trimmed = arg.trim();
  const body = trimmed.startsWith("/ipfs/") ? trimmed.slice("/ipfs/".length) : trimmed;
  const slash = body.indexOf("/");
  const head = slash === -1 ? body : body.slice(0, slash);
  const rest = slash === -1 ? "" : body.slice(slash + 1).replace(/\/+$/, "");
  return { cid: parseCid(head, arg), rest };
}

/** A CID whose blocks this node can verify. */
export function parseCid(text: string, arg = text): CID {
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch (err) {
    throw new StorageError("INVALID_CID", `"${arg.slice(0, 100)}" is not a valid CID or /ipfs/ path. Pass a CID such as Qm… or bafy…, or /ipfs/<cid>/<path>.`, {
      cause: err,
    });
  }
  if (cid.multihash.code !== SHA2_256) {
    throw new StorageError("INVALID_CID", `CID ${cid} uses multihash 0x${cid.multihash.code.toString(16)}; this node stores sha2-256 blocks only.`);
  }
  return cid;
}

/** The CIDs a block links to, in order; none for a codec without links (raw) or one this node does not know. */
export function blockLinks(cid: CID, bytes: Uint8Array): CID[] {
  const codec = CODECS.get(cid.code);
  if (codec === undefined || codec.code === raw.code) return [];
  const block = createUnsafe({ bytes, cid, codec });
  return [...block.links()].map(([, link]) => link);
}

export interface DagVisit {
  cid: CID;
  /** The block that links to this one; undefined for the root. */
  parent: CID | undefined;
  depth: number;
}

export interface WalkOptions {
  /** Links followed from the root at most; default unlimited. */
  maxDepth?: number;
  /** Visit a block reached twice only once (default true); false lists every link, as refs does without --unique. */
  unique?: boolean;
}

/**
 * The blocks of the DAG under `root`, depth first in link order (as refs
 * lists them). A block that is not stored throws BLOB_NOT_FOUND.
 */
export async function* walkDag(root: CID, getBlock: (cid: CID) => Promise<Uint8Array>, options: WalkOptions = {}): AsyncGenerator<DagVisit> {
  const { maxDepth = Number.POSITIVE_INFINITY, unique = true } = options;
  // Keyed by multihash: a CIDv0 and a CIDv1 of one block are one block.
  const seen = new Set<string>([multihashKey(root)]);
  async function* visit(cid: CID, parent: CID | undefined, depth: number): AsyncGenerator<DagVisit> {
    yield { cid, parent, depth };
    if (depth >= maxDepth) return;
    for (const link of blockLinks(cid, await getBlock(cid))) {
      if (unique && seen.has(multihashKey(link))) continue;
      seen.add(multihashKey(link));
      yield* visit(link, cid, depth + 1);
    }
  }
  yield* visit(root, undefined, 0);
}

export function multihashKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString("hex");
}

/** The StorageError (or abort) for a failed read of `arg` from the DAG reader or blockstore. */
export function dagReadError(err: unknown, arg: string): unknown {
  if (err instanceof StorageError) return err;
  const name = err instanceof Error ? err.name : "";
  if (name === "AbortError") return err;
  const cause = { cause: err };
  // A path into a node that has no links by that name: for a file node the exporter says it is not UnixFS.
  const intoFile = name === "NotUnixFSError" && parseIpfsPathOrUndefined(arg)?.rest !== "";
  if (name === "NotFoundError" || name === "DoesNotExistError" || intoFile) {
    return new StorageError(
      "BLOB_NOT_FOUND",
      `${arg} is not stored on this node: a block of it (or the named path) is missing, and the node is offline so it fetches nothing. Add the data here first, or check the path.`,
      cause,
    );
  }
  if (name === "BadPathError") return new StorageError("INVALID_CID", `"${arg.slice(0, 100)}" is not a valid CID or /ipfs/ path. Pass /ipfs/<cid>/<path>.`, cause);
  if (name === "NotUnixFSError" || name === "NoResolverError" || name === "NotAFileError" || name === "NoContentError") {
    return new StorageError("INVALID_CID", `${arg} is not a UnixFS file or directory this node can read (${errorMessage(err)}).`, cause);
  }
  return new StorageError("STORAGE_FAILED", `Cannot read ${arg}: ${errorMessage(err)}.`, cause);
}

function parseIpfsPathOrUndefined(arg: string): IpfsPath | undefined {
  try {
    return parseIpfsPath(arg);
  } catch {
    return undefined;
  }
}
