/**
 * The node-level commands of Cloister's Kubo RPC server: id, version,
 * repo/stat and config (read-only, a few keys), and the networking commands,
 * which it answers as Kubo answers them on a node started offline.
 */
import { generateKeyPairSync } from "node:crypto";
import { statfs } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { base58btc } from "multiformats/bases/base58";
import { identity } from "multiformats/hashes/identity";
import type { HeliaStore } from "./helia-store.ts";
import { flag, RpcError, sendJson } from "./kubo-rpc-response.ts";

export const AGENT_VERSION = "cloister-embedded";

/** Kubo's error for a command that needs the network on a node running offline. */
export const OFFLINE_MESSAGE = "this command must be run in online mode. Try running 'ipfs daemon' first";

/** Commands that need libp2p; this node has none. */
const NETWORK_COMMANDS = /^(swarm|dht|routing|pubsub|bitswap|p2p)(\/|$)|^(ping|name\/publish|name\/resolve|provide\/.*)$/;

export function isNetworkCommand(command: string): boolean {
  return NETWORK_COMMANDS.test(command);
}

export interface NodeIdentity {
  /** The peer ID, an Ed25519 key's identity multihash in base58btc (12D3KooW…). */
  id: string;
  /** The public key, protobuf-encoded as libp2p does, in base64. */
  publicKey: string;
}

/**
 * A fresh Ed25519 identity for one run of the server. The node has no
 * swarm, so nothing ever dials or authenticates it: the ID only names the
 * node in id's answer, as Kubo clients expect one there.
 */
export function newIdentity(): NodeIdentity {
  const { publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  // libp2p's PublicKey message: field 1 KeyType = Ed25519 (1), field 2 Data = the 32 key bytes.
  const encoded = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, raw.byteLength]), raw]);
  return { id: base58btc.baseEncode(identity.digest(encoded).bytes), publicKey: encoded.toString("base64") };
}

/** id of this node; of another peer, Kubo's offline error (finding a peer needs the network). */
export function handleId(res: ServerResponse, query: URLSearchParams, identityOf: NodeIdentity, apiAddress: string): void {
  const peer = query.get("arg");
  if (peer !== null && peer !== identityOf.id) throw new RpcError(500, OFFLINE_MESSAGE);
  sendJson(res, 200, {
    ID: identityOf.id,
    PublicKey: identityOf.publicKey,
    // The one address the node answers on: its RPC API (it has no swarm).
    Addresses: [`${apiAddress}/p2p/${identityOf.id}`],
    AgentVersion: AGENT_VERSION,
    Protocols: [],
  });
}

export function handleVersion(res: ServerResponse): void {
  sendJson(res, 200, { Version: AGENT_VERSION, Commit: "", Repo: "", System: `${process.arch}/${process.platform}`, Golang: "" });
}

export async function handleRepoStat(store: HeliaStore, res: ServerResponse, query: URLSearchParams): Promise<void> {
  let repoSize = 0;
  let numObjects = 0;
  for await (const size of store.node.blockSizes()) {
    repoSize += size;
    numObjects++;
  }
  // The node enforces no quota: the space left on its disk is what it can still store.
  const disk = await statfs(store.dir);
  const stat = { RepoSize: repoSize, StorageMax: repoSize + disk.bavail * disk.bsize, NumObjects: numObjects, RepoPath: store.dir, Version: `${AGENT_VERSION}-level` };
  sendJson(res, 200, flag(query, "size-only", false) ? { RepoSize: stat.RepoSize, StorageMax: stat.StorageMax } : stat);
}

/** config with one arg reads a key; setting keys is refused, the node's configuration is fixed. */
export function handleConfig(res: ServerResponse, query: URLSearchParams, config: Readonly<Record<string, unknown>>): void {
  const [key, value] = query.getAll("arg");
  if (key === undefined) throw new RpcError(400, "config needs arg=<key>, e.g. Addresses.API; config/show lists every key.");
  if (value !== undefined) throw new RpcError(400, `config ${key}: this node's configuration is fixed and cannot be set over the API.`);
  if (!(key in config)) {
    throw new RpcError(500, `failed to get config value: key "${key}" is not set on this node; it knows ${Object.keys(config).join(", ")}.`);
  }
  sendJson(res, 200, { Key: key, Value: config[key] });
}

/** config/show: the keys this node has, nested as in Kubo's config file. */
export function handleConfigShow(res: ServerResponse, config: Readonly<Record<string, unknown>>): void {
  const tree: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const parts = key.split(".");
    let at = tree;
    for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
    at[parts.at(-1) ?? key] = value;
  }
  sendJson(res, 200, tree);
}
