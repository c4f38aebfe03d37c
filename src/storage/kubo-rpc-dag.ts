/**
 * The block, DAG and pin commands of Cloister's Kubo RPC server: block
 * get/put/stat/rm, dag/get, refs, pin add/rm/ls. Pins are recursive only (as
 * add and pin add make them); blocks under a recursive pin are listed as
 * indirect pins, and block/rm refuses them, as Kubo does.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { exporter } from "ipfs-unixfs-exporter";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import * as dagJson from "@ipld/dag-json";
import { errorMessage, isStorageError, StorageError } from "./blob-store.ts";
import type { IpfsNode } from "./helia-store.ts";
import { CODECS, codecNamed, dagReadError, multihashKey, parseIpfsPath, walkDag } from "./ipfs-path.ts";
import { MultipartError, parseMultipart } from "./multipart.ts";
import { flag, optionalInt, requiredArgs, RpcError, sendJson, sendNdjson, streamBody } from "./kubo-rpc-response.ts";
import type { BodyBudget } from "../util/request-body.ts";

/** Kubo refuses blocks over 1 MiB unless allow-big-block is set; so does this node, always. */
const MAX_BLOCK_BYTES = 1024 * 1024;
const DAG_PB = 0x70;

/** The CID an argument names: a CID, or an /ipfs/ path resolved through UnixFS. */
async function resolveCid(node: IpfsNode, arg: string): Promise<CID> {
  const path = parseIpfsPath(arg);
  if (path.rest === "") return path.cid;
  try {
    return (await exporter(`${path.cid}/${path.rest}`, node.blockstore, { offline: true })).cid;
  } catch (err) {
    throw dagReadError(err, arg);
  }
}

export async function handleBlockGet(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "block/get", "cid");
  const block = await node.getBlock(await resolveCid(node, arg));
  await streamBody(res, (async function* () { yield block; })(), { "content-type": "text/plain" });
}

export async function handleBlockStat(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "block/stat", "cid");
  const cid = await resolveCid(node, arg);
  sendJson(res, 200, { Key: cid.toString(), Size: (await node.getBlock(cid)).byteLength });
}

export async function handleBlockPut(node: IpfsNode, bodies: BodyBudget, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const { codec, version } = blockFormat(query);
  const mhtype = query.get("mhtype") ?? "sha2-256";
  if (mhtype !== "sha2-256") throw new RpcError(400, `mhtype=${mhtype} is not supported: this node stores sha2-256 blocks only.`);
  const mhlen = query.get("mhlen");
  if (mhlen !== null && mhlen !== "-1" && mhlen !== "32") throw new RpcError(400, `mhlen=${mhlen} is not supported: sha2-256 digests are 32 bytes.`);
  const pin = flag(query, "pin", false);
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) throw new RpcError(400, "block/put expects a multipart/form-data body with one part per block.");
  let parts;
  try {
    parts = parseMultipart(await bodies.read(req, "block/put request"), contentType);
  } catch (err) {
    if (!(err instanceof MultipartError)) throw err;
    throw new RpcError(400, `The block/put request body is not valid multipart/form-data: ${err.message}.`);
  }
  if (parts.length === 0) throw new RpcError(400, "The block/put request holds no block.");
  for (const part of parts) {
    if (part.bytes.byteLength > MAX_BLOCK_BYTES) {
      throw new RpcError(400, `produced block is over 1MiB: a block of ${part.bytes.byteLength} bytes is larger than this node stores; split the data with add instead.`);
    }
  }
  const lines: { Key: string; Size: number }[] = [];
  await node.gcLock.shared(async () => {
    for (const part of parts) {
      const digest = await sha256.digest(part.bytes);
      const cid = version === 0 ? CID.createV0(digest) : CID.createV1(codec, digest);
      await node.blockstore.put(cid, part.bytes);
      if (pin) await pinRecursively(node, cid, cid.toString());
      lines.push({ Key: cid.toString(), Size: part.bytes.byteLength });
    }
  });
  if (lines.length === 1) sendJson(res, 200, lines[0]);
  else sendNdjson(res, lines);
}

/** block/put's codec and CID version: cid-codec (default raw, CIDv1), or the deprecated format (v0/protobuf: CIDv0). */
function blockFormat(query: URLSearchParams): { codec: number; version: 0 | 1 } {
  const format = query.get("format");
  const cidCodec = query.get("cid-codec");
  if (format !== null && cidCodec !== null) throw new RpcError(400, "pass cid-codec or the deprecated format, not both.");
  if (format === "v0" || format === "protobuf") return { codec: DAG_PB, version: 0 };
  const name = format === "cbor" ? "dag-cbor" : (format ?? cidCodec ?? "raw");
  const codec = codecNamed(name);
  if (codec === undefined) throw new RpcError(400, `cid-codec=${name} is not supported: pass raw, dag-pb, dag-cbor or dag-json.`);
  return { codec: codec.code, version: 1 };
}

export async function handleBlockRm(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = requiredArgs(query, "block/rm", "cid");
  const force = flag(query, "force", false);
  const cids = args.map((arg) => parseIpfsPath(arg).cid);
  const lines: { Hash: string; Error?: string }[] = [];
  // Alone under the GC lock: no add or pin is between writing blocks and pinning them.
  await node.gcLock.exclusive(async () => {
    const pinned = await pinnedBlocks(node);
    for (const cid of cids) {
      const root = pinned.get(multihashKey(cid))?.[1];
      if (root !== undefined) {
        lines.push({ Hash: cid.toString(), Error: multihashKey(root) === multihashKey(cid) ? "pinned: recursive" : `pinned via ${root}` });
      } else if (!(await node.hasBlock(cid))) {
        if (!force) lines.push({ Hash: cid.toString(), Error: `block ${cid} is not stored on this node` });
      } else {
        await node.deleteBlock(cid);
        lines.push({ Hash: cid.toString() });
      }
    }
  });
  sendNdjson(res, lines);
}

export async function handleDagGet(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "dag/get", "ref");
  const outputName = query.get("output-codec") ?? "dag-json";
  if (outputName !== "dag-json" && outputName !== "json") throw new RpcError(400, `output-codec=${outputName} is not supported: this node answers dag-json.`);
  const path = parseIpfsPath(arg);
  if (path.rest !== "") throw new RpcError(400, `${arg}: dag/get here reads a whole block; pass its CID without a path.`);
  const codec = CODECS.get(path.cid.code);
  if (codec === undefined) throw new RpcError(400, `${path.cid} has codec 0x${path.cid.code.toString(16)}, which this node does not decode.`);
  const value = codec.decode(await node.getBlock(path.cid));
  res.writeHead(200, { "content-type": "application/json" });
  res.end(dagJson.encode(value));
}

export async function handleRefs(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = requiredArgs(query, "refs", "ipfs-path");
  const recursive = flag(query, "recursive", false);
  const unique = flag(query, "unique", false);
  const edges = flag(query, "edges", false);
  const requestedDepth = optionalInt(query, "max-depth");
  const maxDepth = requestedDepth ?? (recursive ? Number.POSITIVE_INFINITY : 1);
  const lines: { Ref: string; Err: string }[] = [];
  for (const arg of args) {
    const root = await resolveCid(node, arg);
    for await (const { cid, parent } of walkCatching(node, root, arg, { maxDepth, unique })) {
      if (parent === undefined) continue;
      lines.push({ Ref: edges ? `${parent} -> ${cid}` : cid.toString(), Err: "" });
    }
  }
  sendNdjson(res, lines);
}

export async function handlePinAdd(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = requiredArgs(query, "pin/add", "ipfs-path");
  if (!flag(query, "recursive", true)) throw new RpcError(400, "recursive=false is not supported: this node keeps recursive pins only.");
  const pins: string[] = [];
  for (const arg of args) {
    const cid = await resolveCid(node, arg);
    await node.gcLock.shared(() => pinRecursively(node, cid, arg));
    pins.push(cid.toString());
  }
  sendJson(res, 200, { Pins: pins });
}

export async function handlePinRm(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = requiredArgs(query, "pin/rm", "ipfs-path");
  const pins: string[] = [];
  for (const arg of args) {
    const cid = await resolveCid(node, arg);
    if (!(await node.unpin(cid))) throw new RpcError(500, `${arg} is not pinned or pinned indirectly`);
    pins.push(cid.toString());
  }
  sendJson(res, 200, { Pins: pins });
}

export async function handlePinLs(node: IpfsNode, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const type = query.get("type") ?? "all";
  if (!["all", "recursive", "indirect", "direct"].includes(type)) throw new RpcError(400, `type=${type} is not a pin type: pass all, recursive, indirect or direct.`);
  const stream = flag(query, "stream", false);
  const listed: { cid: string; type: string }[] = [];
  const args = query.getAll("arg");
  const wantIndirect = type === "all" || type === "indirect";
  const wantRecursive = type === "all" || type === "recursive";
  if (args.length === 0) {
    if (wantRecursive) for await (const cid of node.pins()) listed.push({ cid: cid.toString(), type: "recursive" });
    if (wantIndirect) {
      for (const [cid, root] of (await pinnedBlocks(node)).values()) if (multihashKey(cid) !== multihashKey(root)) listed.push({ cid: cid.toString(), type: "indirect" });
    }
  } else {
    const indirect = wantIndirect ? await pinnedBlocks(node) : undefined;
    for (const arg of args) {
      const cid = await resolveCid(node, arg);
      if (wantRecursive && (await node.isPinned(cid))) {
        listed.push({ cid: cid.toString(), type: "recursive" });
        continue;
      }
      const root = indirect?.get(multihashKey(cid))?.[1];
      if (root === undefined) throw new RpcError(500, `path '${arg}' is not pinned`);
      listed.push({ cid: cid.toString(), type: `indirect through ${root}` });
    }
  }
  if (stream) {
    sendNdjson(res, listed.map(({ cid, type: pinType }) => ({ Cid: cid, Type: pinType, Name: "" })));
    return;
  }
  sendJson(res, 200, { Keys: Object.fromEntries(listed.map(({ cid, type: pinType }) => [cid, { Type: pinType, Name: "" }])) });
}

/** Pins the DAG under `cid` after checking that every block of it is stored; the caller holds the GC lock shared. */
async function pinRecursively(node: IpfsNode, cid: CID, arg: string): Promise<void> {
  for await (const visit of walkCatching(node, cid, arg)) void visit;
  await node.pin(cid);
}

/**
 * Every block under a recursive pin, by multihash: the block's CID and the
 * pin's root. A pinned DAG with a block gone (a store damaged by hand) is
 * listed as far as it reaches.
 */
async function pinnedBlocks(node: IpfsNode): Promise<Map<string, [CID, CID]>> {
  const blocks = new Map<string, [CID, CID]>();
  for await (const root of node.pins()) {
    try {
      for await (const { cid } of walkDag(root, (c) => node.getBlock(c))) if (!blocks.has(multihashKey(cid))) blocks.set(multihashKey(cid), [cid, root]);
    } catch (err) {
      if (!isStorageError(err, "BLOB_NOT_FOUND")) throw err;
    }
  }
  return blocks;
}

async function* walkCatching(node: IpfsNode, root: CID, arg: string, options?: Parameters<typeof walkDag>[2]) {
  try {
    yield* walkDag(root, (cid) => node.getBlock(cid), options);
  } catch (err) {
    if (isStorageError(err, "BLOB_NOT_FOUND")) {
      throw new StorageError("BLOB_NOT_FOUND", `${arg}: a block of its DAG is not stored on this node, which is offline and fetches nothing (${errorMessage(err)}).`, { cause: err });
    }
    throw err;
  }
}
