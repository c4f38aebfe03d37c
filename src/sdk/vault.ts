/**
 * The owner's side of the secret vault (issue 15):
 *
 * - store (one secret, or many in batches: storeVaultSecrets): split k-of-n (3-of-5 by default) with the audited
 *   shamir-secret-sharing, a commitment per share under one root, mint the
 *   token with that root, seal share i (HPKE) to the registered key of the
 *   enclave at slot i of a cluster, hand each envelope to that enclave's
 *   host, and wait for SecretSynced in that cluster;
 * - get: an EIP-712 request signed by the owner's account naming a fresh
 *   ephemeral X25519 key, a window of a few blocks and a random nonce; each
 *   slot enclave checks ownership from chain state it proves itself and
 *   answers with its share sealed to that key; k good answers are combined
 *   and checked against the commitment;
 * - transfer and burn: the ERC-721's.
 *
 * Hosts only ever see ciphertext, descriptors (commitments) and signatures.
 */
import { randomBytes } from "node:crypto";
import { toHex, type Address, type Hex } from "viem";
import { getContractEvents } from "viem/actions";
import type { LocalAccount } from "viem/accounts";
import { secretVaultAbi } from "../chain/abi/SecretVault.ts";
import { burnSecret } from "../chain/actions/burn-secret.ts";
import { listClusters } from "../chain/actions/list-clusters.ts";
import { readCluster, type ClusterRecord } from "../chain/actions/read-cluster.ts";
import { readEnclave } from "../chain/actions/read-enclave.ts";
import { readSecret } from "../chain/actions/read-secret.ts";
import { readSync } from "../chain/actions/read-sync.ts";
import { secretTokenId, storeSecret, storeSecrets } from "../chain/actions/store-secret.ts";
import { transferSecret } from "../chain/actions/transfer-secret.ts";
import type { ReaderClient, WriterClient } from "../chain/clients.ts";
import { generateHpkeKeyPair } from "../crypto/hpke.ts";
import type { VaultDirectory, VaultSlotApi } from "../host/vault-host.ts";
import { parseShareSetDescriptor, shareSetDescriptorJson } from "../protocol/vault-descriptor.ts";
import { sealShareSet, ShareSealer, type ShareEnvelope } from "../protocol/vault-envelopes.ts";
import { recoverSecret, type RetrievalResponse } from "../protocol/vault-recover.ts";
import { signRetrievalRequest, vaultDomain } from "../protocol/vault-retrieval.ts";
import { splitSecret } from "../protocol/vault-shares.ts";
import { VaultClientError } from "./vault-errors.ts";

export interface VaultContext {
  reader: ReaderClient;
  vault: Address;
  registry: Address;
  directory: VaultDirectory;
}

export interface StoreOptions {
  threshold?: number;
  shares?: number;
  /** The cluster to store in; default the first cluster whose size is the share count. */
  cluster?: bigint;
  /** Wait for SecretSynced in that cluster (default true), polling every 50 ms up to `timeoutMs` (default 60 s). */
  awaitSync?: boolean;
  timeoutMs?: number;
}

export interface StoredSecret {
  tokenId: bigint;
  cluster: bigint;
  sharesRoot: Hex;
  transactionHash: Hex;
}

async function pickCluster(ctx: VaultContext, shares: number, wanted?: bigint): Promise<ClusterRecord> {
  if (wanted !== undefined) {
    const c = await readCluster(ctx.reader, ctx.vault, wanted);
    if (c.size !== shares) throw new VaultClientError("NO_CLUSTER", `cluster ${wanted} has ${c.size} slots, not ${shares}; pick a cluster of that size or change --shares`);
    return c;
  }
  const c = (await listClusters(ctx.reader, ctx.vault)).find((x) => x.size === shares);
  if (!c) throw new VaultClientError("NO_CLUSTER", `the vault has no cluster of ${shares} slots; start a devnet with clusters (cloister devnet up --clusters 2) or change --shares`);
  return c;
}

/** What every store needs once: the cluster, its slots' registered HPKE keys, the chain id. */
async function storeTarget(ctx: VaultContext, opts: StoreOptions): Promise<{ cluster: ClusterRecord; keys: Uint8Array[]; chainId: bigint; threshold: number; shareCount: number }> {
  const threshold = opts.threshold ?? 3;
  const shareCount = opts.shares ?? 5;
  const cluster = await pickCluster(ctx, shareCount, opts.cluster);
  const [keys, chainId] = await Promise.all([
    Promise.all(cluster.members.map(async (m) => Uint8Array.from(Buffer.from((await readEnclave(ctx.reader, ctx.registry, m)).hpkePublicKey.slice(2), "hex")))),
    ctx.reader.getChainId(),
  ]);
  return { cluster, keys, chainId: BigInt(chainId), threshold, shareCount };
}

/** The slot's host, or a STORE_INCOMPLETE refusal when the directory knows none. */
function slotNode(ctx: VaultContext, cluster: ClusterRecord, slot: number): VaultSlotApi {
  const node = ctx.directory.node(cluster.members[slot]!);
  if (!node) throw new VaultClientError("STORE_INCOMPLETE", `no host is known for slot ${slot} of cluster ${cluster.cluster}`);
  return node;
}

/** Splits, mints, seals and hands the shares to a cluster; resolves once that cluster synced it (by default). */
export async function storeVaultSecret(ctx: VaultContext, owner: WriterClient, secret: Uint8Array, opts: StoreOptions = {}): Promise<StoredSecret> {
  const { cluster, keys, chainId, threshold, shareCount } = await storeTarget(ctx, opts);
  const salt = toHex(randomBytes(32));
  const tokenId = secretTokenId(owner.account.address, salt);
  const set = await splitSecret({ chainId, vault: ctx.vault, tokenId }, secret, { threshold, shareCount });
  const tx = await storeSecret(owner, ctx.vault, { salt, threshold, shares: shareCount, sharesRoot: set.root });
  const envelopes = await sealShareSet(set, keys, "store");
  for (const s of set.shares) s.share.fill(0);
  const descriptor = shareSetDescriptorJson(set.descriptor);
  const results = await Promise.allSettled(envelopes.map(async (e) => slotNode(ctx, cluster, e.slot).store({ descriptor, envelope: { enc: e.enc, ciphertext: e.ciphertext, seq: e.seq } })));
  const failed = results.flatMap((r, slot) => (r.status === "rejected" ? [{ slot, code: (r.reason as { code?: string }).code ?? "INTERNAL" }] : []));
  if (failed.length) {
    throw new VaultClientError("STORE_INCOMPLETE", `token ${tokenId} was minted but ${failed.length} slots of cluster ${cluster.cluster} did not take their share; burn it and store again`, {
      details: { tokenId: String(tokenId), cluster: String(cluster.cluster), failed },
    });
  }
  if (opts.awaitSync ?? true) await awaitSynced(ctx, tokenId, cluster.cluster, opts.timeoutMs ?? 60_000);
  return { tokenId, cluster: cluster.cluster, sharesRoot: set.root, transactionHash: tx.hash };
}

export interface StoreManyOptions extends StoreOptions {
  /** Secrets minted per storeBatch transaction (default 100: about 7.5M gas). */
  batchSize?: number;
}

export interface StoredSecrets {
  /** In the order of the secrets given. */
  tokenIds: bigint[];
  cluster: bigint;
  transactionHashes: Hex[];
}

/**
 * Stores many secrets as one owner: each split as `storeVaultSecret` does, minted `batchSize` per storeBatch
 * transaction, and each slot's envelopes handed to its host in one call per batch (the enclave proves the
 * batch's records together and checks every share against its commitment). While a batch is handed over, the
 * next is minted. Resolves once the cluster synced every token (by default); STORE_INCOMPLETE names the tokens
 * some slot did not take (minted but not stored: burn them and store again).
 */
export async function storeVaultSecrets(ctx: VaultContext, owner: WriterClient, secrets: readonly Uint8Array[], opts: StoreManyOptions = {}): Promise<StoredSecrets> {
  const { cluster, keys, chainId, threshold, shareCount } = await storeTarget(ctx, opts);
  const batchSize = opts.batchSize ?? 100;
  const fromBlock = await ctx.reader.getBlockNumber();
  const tokenIds: bigint[] = [];
  const transactionHashes: Hex[] = [];
  const handOvers: Promise<{ tokenId: bigint; slot: number; code: string }[]>[] = [];
  for (let at = 0; at < secrets.length; at += batchSize) {
    const sets = await Promise.all(
      secrets.slice(at, at + batchSize).map(async (secret) => {
        const salt = toHex(randomBytes(32));
        const tokenId = secretTokenId(owner.account.address, salt);
        return { salt, tokenId, set: await splitSecret({ chainId, vault: ctx.vault, tokenId }, secret, { threshold, shareCount }) };
      }),
    );
    const tx = await storeSecrets(owner, ctx.vault, sets.map(({ salt, set }) => ({ salt, threshold, shares: shareCount, sharesRoot: set.root })));
    tokenIds.push(...sets.map((s) => s.tokenId));
    transactionHashes.push(tx.hash);
    handOvers.push(handOver(ctx, cluster, keys, sets, tx.receipt.blockNumber));
  }
  const failed = (await Promise.all(handOvers)).flat();
  if (failed.length) {
    const tokens = [...new Set(failed.map((f) => String(f.tokenId)))];
    throw new VaultClientError("STORE_INCOMPLETE", `${tokens.length} of ${tokenIds.length} tokens were minted but some slots of cluster ${cluster.cluster} did not take their share; burn them and store again`, {
      details: { cluster: String(cluster.cluster), tokens, failed: failed.map((f) => ({ tokenId: String(f.tokenId), slot: f.slot, code: f.code })) },
    });
  }
  if (opts.awaitSync ?? true) await awaitSyncedMany(ctx, tokenIds, cluster.cluster, fromBlock, opts.timeoutMs ?? 60_000);
  return { tokenIds, cluster: cluster.cluster, transactionHashes };
}

/**
 * Seals a batch's shares and hands each slot its envelopes in one call; what a slot did not take, by token.
 * A slot's shares of the batch are messages of one HPKE context to its key (one X25519 exchange per slot
 * per batch, not per share).
 */
async function handOver(
  ctx: VaultContext,
  cluster: ClusterRecord,
  keys: Uint8Array[],
  sets: { tokenId: bigint; set: Awaited<ReturnType<typeof splitSecret>> }[],
  atBlock: bigint,
): Promise<{ tokenId: bigint; slot: number; code: string }[]> {
  const bySlot = keys.map(() => [] as { descriptor: ReturnType<typeof shareSetDescriptorJson>; envelope: ShareEnvelope }[]);
  const sealers = keys.map((key) => new ShareSealer(key, "store"));
  for (const { set } of sets) {
    const descriptor = shareSetDescriptorJson(set.descriptor);
    const { binding, version } = set.descriptor;
    for (const share of set.shares) bySlot[share.slot]!.push({ descriptor, envelope: sealers[share.slot]!.seal({ binding, version, slot: share.slot }, share) });
    for (const s of set.shares) s.share.fill(0);
  }
  const failed = await Promise.all(bySlot.map((items, slot) => storeSlot(slotNode(ctx, cluster, slot), items, atBlock)));
  return failed.flatMap((refused, slot) => refused.map(({ index, code }) => ({ tokenId: sets[index]!.tokenId, slot, code })));
}

/** Refusals that say the enclave could not read the chain in time (a loaded endpoint), not that the share is bad. */
const TRANSIENT = new Set(["CHAIN_UNAVAILABLE", "TIMEOUT"]);

/**
 * One slot's envelopes of a batch, to be proved at `atBlock` (the batch's block: the same for every slot, so the
 * node answers the cluster's proof requests once); what the enclave refused only because it could not read the
 * chain is sent again (four times at most, backing off from 1 s).
 */
async function storeSlot(node: VaultSlotApi, items: Parameters<VaultSlotApi["storeMany"]>[0]["items"], atBlock: bigint): Promise<{ index: number; code: string }[]> {
  let pending = items.map((item, index) => ({ item, index }));
  const refused: { index: number; code: string }[] = [];
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    const batch = pending;
    let round: { index: number; code: string }[];
    try {
      round = (await node.storeMany({ items: batch.map((p) => p.item), atBlock })).refused.map(({ index, code }) => ({ index: batch[index]!.index, code }));
    } catch (e) {
      const code = (e as { code?: string }).code ?? "INTERNAL";
      round = batch.map((p) => ({ index: p.index, code }));
    }
    const retry = attempt < 4 ? round.filter((f) => TRANSIENT.has(f.code)) : [];
    refused.push(...round.filter((f) => !retry.includes(f)));
    const again = new Set(retry.map((f) => f.index));
    pending = batch.filter((p) => again.has(p.index));
  }
  return refused;
}

/** Follows SecretSynced in `cluster` from `fromBlock` (one eth_getLogs per poll, not one read per token) until every token synced. */
export async function awaitSyncedMany(ctx: VaultContext, tokenIds: readonly bigint[], cluster: bigint, fromBlock: bigint, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(tokenIds);
  let from = fromBlock;
  while (waiting.size > 0) {
    const head = await ctx.reader.getBlockNumber();
    if (head >= from) {
      const logs = await getContractEvents(ctx.reader, { address: ctx.vault, abi: secretVaultAbi, eventName: "SecretSynced", args: { cluster }, fromBlock: from, toBlock: head });
      for (const l of logs) waiting.delete(l.args.tokenId!);
      from = head + 1n;
    }
    if (waiting.size === 0) return;
    if (Date.now() > deadline) {
      throw new VaultClientError("NOT_SYNCED", `cluster ${cluster} did not sync ${waiting.size} of ${tokenIds.length} tokens within ${timeoutMs} ms; check that its hosts run`, {
        details: { cluster: String(cluster), tokens: [...waiting].slice(0, 20).map(String) },
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls syncOf until the cluster synced the token's current version. */
export async function awaitSynced(ctx: VaultContext, tokenId: bigint, cluster: bigint, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await readSync(ctx.reader, ctx.vault, tokenId, cluster)).synced) return;
    if (Date.now() > deadline) throw new VaultClientError("NOT_SYNCED", `cluster ${cluster} did not sync token ${tokenId} within ${timeoutMs} ms; check that its hosts run`, { details: { tokenId: String(tokenId), cluster: String(cluster) } });
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ClusterSync {
  id: bigint;
  synced: boolean;
  slots: { slot: number; enclave: Address; confirmed: boolean }[];
}

/** Per cluster of the token's size: synced or not, and which slots confirmed the current version. */
export async function vaultStatus(ctx: VaultContext, tokenId: bigint): Promise<{ tokenId: bigint; version: bigint; threshold: number; shares: number; burned: boolean; owner: Address | null; clusters: ClusterSync[] }> {
  const record = await readSecret(ctx.reader, ctx.vault, tokenId);
  if (record.threshold === 0) throw new VaultClientError("UNKNOWN_TOKEN", `token ${tokenId} is not in vault ${ctx.vault}`);
  const clusters = (await listClusters(ctx.reader, ctx.vault)).filter((c) => c.size === record.shares);
  const out = await Promise.all(
    clusters.map(async (c) => {
      const sync = await readSync(ctx.reader, ctx.vault, tokenId, c.cluster);
      return { id: c.cluster, synced: sync.synced, slots: c.members.map((enclave, slot) => ({ slot, enclave, confirmed: sync.confirmedSlots.includes(slot) })) };
    }),
  );
  let owner: Address | null = null;
  if (!record.burned) owner = (await ctx.reader.readContract({ address: ctx.vault, abi: ownerOfAbi, functionName: "ownerOf", args: [tokenId] })) as Address;
  return { tokenId, version: record.version, threshold: record.threshold, shares: record.shares, burned: record.burned, owner, clusters: out };
}

const ownerOfAbi = [{ type: "function", name: "ownerOf", stateMutability: "view", inputs: [{ name: "tokenId", type: "uint256" }], outputs: [{ name: "", type: "address" }] }] as const;

export interface RetrieveOptions {
  /** How many blocks the request stays valid (default 16; the enclaves accept at most 64). */
  validityBlocks?: bigint;
  /** Ask these clusters (default: every synced cluster, in id order). */
  clusters?: bigint[];
}

/**
 * Retrieves the secret as `account` (it must be ownerOf). Asks the slot enclaves of the synced clusters
 * until k good shares are in hand; a share that does not match its commitment is set aside.
 */
export async function retrieveVaultSecret(ctx: VaultContext, account: LocalAccount, tokenId: bigint, opts: RetrieveOptions = {}): Promise<Uint8Array> {
  const record = await readSecret(ctx.reader, ctx.vault, tokenId);
  if (record.threshold === 0 || record.burned) throw new VaultClientError("UNKNOWN_TOKEN", `token ${tokenId} is not in vault ${ctx.vault}, or was burned`);
  const status = await vaultStatus(ctx, tokenId);
  const clusters = opts.clusters ?? status.clusters.filter((c) => c.synced).map((c) => c.id);
  const ephemeral = await generateHpkeKeyPair();
  const chainId = await ctx.reader.getChainId();
  const request = await signRetrievalRequest(account, vaultDomain(chainId, ctx.vault), {
    tokenId,
    ownerKey: ephemeral.publicKey,
    currentBlock: await ctx.reader.getBlockNumber(),
    validityBlocks: opts.validityBlocks ?? 16n,
  });
  const refusals: { cluster: string; slot: number; code: string; details?: object }[] = [];
  try {
    for (const clusterId of clusters) {
      const cluster = status.clusters.find((c) => c.id === clusterId);
      if (!cluster) continue;
      const nodes = cluster.slots.map((s) => ({ slot: s.slot, node: ctx.directory.node(s.enclave) }));
      const answers = await Promise.allSettled(nodes.map(({ node }) => (node ? node.retrieve({ request }) : Promise.reject(Object.assign(new Error("no host"), { code: "PEER_UNREACHABLE" })))));
      const responses: RetrievalResponse[] = [];
      let descriptorRaw: unknown;
      answers.forEach((a, i) => {
        if (a.status === "fulfilled") {
          responses.push({ slot: a.value.slot, version: a.value.version, enc: a.value.envelope.enc, ciphertext: a.value.envelope.ciphertext });
          descriptorRaw ??= a.value.descriptor;
        } else refusals.push({ cluster: String(clusterId), slot: nodes[i]!.slot, code: (a.reason as { code?: string }).code ?? "INTERNAL" });
      });
      if (responses.length < record.threshold || descriptorRaw === undefined) continue;
      // The descriptor comes from a host: it is checked against the chain's root before anything is trusted.
      const descriptor = parseShareSetDescriptor(descriptorRaw);
      try {
        return await recoverSecret({ descriptor, root: record.sharesRoot, request, ephemeralPrivateKey: ephemeral.privateKey, responses });
      } catch (e) {
        refusals.push({ cluster: String(clusterId), slot: -1, code: (e as { code?: string }).code ?? "INTERNAL", ...((e as { details?: object }).details ? { details: (e as { details?: object }).details } : {}) });
      }
    }
  } finally {
    ephemeral.privateKey.fill(0);
  }
  const counts = new Map<string, number>();
  for (const r of refusals) counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
  const reason = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "NOT_SYNCED";
  throw new VaultClientError("RETRIEVAL_REFUSED", `fewer than ${record.threshold} slot enclaves of any cluster released a good share of token ${tokenId} (${reason})`, {
    details: { tokenId: String(tokenId), reason, refusals },
  });
}

export function transferVaultSecret(ctx: Pick<VaultContext, "vault">, owner: WriterClient, tokenId: bigint, to: Address) {
  return transferSecret(owner, ctx.vault, tokenId, to);
}

export function burnVaultSecret(ctx: Pick<VaultContext, "vault">, owner: WriterClient, tokenId: bigint) {
  return burnSecret(owner, ctx.vault, tokenId);
}

export type { VaultSlotApi };
