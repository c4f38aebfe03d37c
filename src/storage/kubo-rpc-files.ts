/**
 * The UnixFS read commands of Cloister's Kubo RPC server: cat, get (a tar
 * stream, as Kubo answers), ls and files/stat, over /ipfs/ paths of any CID
 * version. Only immutable paths: the node has no MFS, so files/stat takes
 * /ipfs/<cid>/<path> and nothing else.
 */
import type { ServerResponse } from "node:http";
import * as dagPb from "@ipld/dag-pb";
import { UnixFS } from "ipfs-unixfs";
import { exporter, type UnixFSEntry } from "ipfs-unixfs-exporter";
import type { CID } from "multiformats/cid";
import type { HeliaStore, IpfsNode } from "./helia-store.ts";
import { dagReadError, parseIpfsPath, type IpfsPath } from "./ipfs-path.ts";
import { abortOnClose, flag, optionalInt, requiredArgs, RpcError, sendJson, sendNdjson, streamBody } from "./kubo-rpc-response.ts";
import { tarEnd, tarHeader, tarPadding } from "./tar.ts";

const RAW_CODEC = 0x55;
const DAG_PB_CODEC = 0x70;
/** Kubo's UnixFS type numbers in ls output. */
const LS_TYPE = { directory: 1, file: 2 } as const;

export async function handleCat(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "cat", "ipfs-path");
  const path = parseIpfsPath(arg);
  const offset = optionalInt(query, "offset");
  const length = optionalInt(query, "length");
  const abort = abortOnClose(res);
  let chunks: AsyncIterable<Uint8Array>;
  if (path.rest === "" && path.cid.version === 1 && (path.cid.code === RAW_CODEC || path.cid.code === DAG_PB_CODEC)) {
    // A blob as Cloister stores it: the store's own read path.
    chunks = store.cat(path.cid.toString(), { offset, length, signal: abort.signal });
  } else {
    const entry = await resolve(store.node, path, arg, abort.signal);
    if (entry.type === "directory") throw new RpcError(500, `${arg} is a directory: cat reads files; list it with ls, or fetch it whole with get.`);
    if (entry.type === "object") throw new RpcError(500, `${arg} is not a UnixFS file; read it with dag/get or block/get.`);
    chunks = guarded(entry.content({ offset, length, signal: abort.signal }), arg);
  }
  await streamBody(res, chunks, { "content-type": "text/plain" });
}

export async function handleGet(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "get", "ipfs-path");
  if (flag(query, "compress", false)) throw new RpcError(400, "compress=true is not supported by this node: get answers an uncompressed tar stream.");
  const path = parseIpfsPath(arg);
  const abort = abortOnClose(res);
  const root = await resolve(store.node, path, arg, abort.signal);
  const name = path.rest === "" ? path.cid.toString() : (path.rest.split("/").at(-1) ?? path.cid.toString());
  await streamBody(res, guarded(tarOf(store.node, root, name, abort.signal), arg), { "content-type": "application/x-tar" });
}

export async function handleLs(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const args = requiredArgs(query, "ls", "ipfs-path");
  const lines: unknown[] = [];
  for (const arg of args) {
    const entry = await resolve(store.node, parseIpfsPath(arg), arg);
    const children: { name: string; cid: CID }[] =
      entry.type === "directory"
        ? await collect(entry.entries())
        : entry.type === "file"
          ? entry.node.Links.map((link) => ({ name: link.Name ?? "", cid: link.Hash }))
          : [];
    const links = [];
    for (const child of children) {
      const resolved = await resolve(store.node, { cid: child.cid, rest: "" }, `${arg}/${child.name}`);
      const isDir = resolved.type === "directory";
      links.push({
        Name: child.name,
        Hash: child.cid.toString(),
        Size: isDir ? 0 : Number(resolved.size),
        Type: isDir ? LS_TYPE.directory : LS_TYPE.file,
        Target: "",
      });
    }
    lines.push({ Objects: [{ Hash: arg, Links: links }] });
  }
  sendNdjson(res, lines);
}

export async function handleFilesStat(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const [arg = ""] = requiredArgs(query, "files/stat", "path");
  if (!arg.startsWith("/ipfs/")) {
    throw new RpcError(400, `${arg}: this node has no MFS (mutable files), so files/stat takes /ipfs/<cid>/<path> only.`);
  }
  const entry = await resolve(store.node, parseIpfsPath(arg), arg);
  const block = await store.node.getBlock(entry.cid);
  if (entry.cid.code === RAW_CODEC) {
    sendJson(res, 200, { Hash: entry.cid.toString(), Size: block.byteLength, CumulativeSize: block.byteLength, Blocks: 0, Type: "file" });
    return;
  }
  if (entry.cid.code !== DAG_PB_CODEC) throw new RpcError(500, `${arg} is not a UnixFS node; inspect it with dag/get.`);
  const node = dagPb.decode(block);
  const unixfs = node.Data === undefined ? undefined : UnixFS.unmarshal(node.Data);
  const isDir = unixfs?.isDirectory() === true;
  const linked = node.Links.reduce((sum, link) => sum + (link.Tsize ?? 0), 0);
  sendJson(res, 200, {
    Hash: entry.cid.toString(),
    Size: isDir || unixfs === undefined ? 0 : Number(unixfs.fileSize()),
    CumulativeSize: block.byteLength + linked,
    Blocks: node.Links.length,
    Type: isDir ? "directory" : "file",
  });
}

/** The UnixFS entry at the path, its blocks read from this node only. */
async function resolve(node: IpfsNode, path: IpfsPath, arg: string, signal?: AbortSignal): Promise<UnixFSEntry> {
  try {
    return await exporter(path.rest === "" ? path.cid : `${path.cid}/${path.rest}`, node.blockstore, { signal, offline: true });
  } catch (err) {
    throw dagReadError(err, arg);
  }
}

/** The tar stream of an entry and, for a directory, everything under it. */
async function* tarOf(node: IpfsNode, root: UnixFSEntry, name: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  yield* tarEntries(node, root, name, signal);
  yield tarEnd();
}

async function* tarEntries(node: IpfsNode, entry: UnixFSEntry, name: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  if (entry.type === "directory") {
    yield tarHeader(name, "directory", 0);
    for await (const child of entry.entries({ signal })) {
      const path = `${name}/${child.name}`;
      yield* tarEntries(node, await resolve(node, { cid: child.cid, rest: "" }, path, signal), path, signal);
    }
    return;
  }
  if (entry.type === "object") throw new RpcError(500, `${name} is not a UnixFS node; get writes UnixFS files and directories only.`);
  const size = Number(entry.size);
  yield tarHeader(name, "file", size);
  let written = 0;
  for await (const chunk of entry.content({ signal })) {
    written += chunk.byteLength;
    yield chunk;
  }
  if (written !== size) throw new RpcError(500, `${name} holds ${written} bytes where its UnixFS node says ${size}: the DAG is malformed.`);
  yield tarPadding(size);
}

/** The chunks, with a failed read mapped to the StorageError it means. */
async function* guarded(chunks: AsyncIterable<Uint8Array>, arg: string): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } catch (err) {
    throw dagReadError(err, arg);
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
