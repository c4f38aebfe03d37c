/**
 * The host of vault enclaves (issue 15): one process may supervise several
 * vault enclave processes (a whole cluster fits a 2-core machine). It is
 * untrusted and only moves public data and ciphertext:
 *
 * - relays owners' store envelopes to the enclave of the slot (one or many
 *   per call);
 * - collects the enclaves' signed confirmations and sends them in one
 *   `confirm` call per flush (any account may relay; a batch covers several
 *   enclaves and many tokens);
 * - crawls the vault's events from each enclave's sealed checkpoint, in
 *   ranges (`eth_getLogs` over up to `logRange` blocks, never block by
 *   block), and on `SecretSynced` in another cluster fetches the share from
 *   the peer at the same slot of that cluster (the peer's enclave decides
 *   whether to give it, from the chain; the share travels sealed to the
 *   requester's registered key);
 * - bootstraps a new enclave's slot from the other clusters, paged and
 *   resumable (the enclave keeps the cursor sealed), trying another cluster
 *   when one fails.
 *
 * Peer transport: when the directory knows the peer's listener
 * (`listenerOf`), the fetching enclave itself opens a mutual attested TLS
 * session to it through this host's relay (`fetchFrom`), and the host carries
 * only TLS records; otherwise the host asks the peer's host (`exportShares`)
 * and relays the HPKE envelopes. Either way the exporting enclave decides from
 * the chain, and the shares are sealed to the requester's registered key.
 */
import type { HpkeSealed } from "../crypto/hpke.ts";
import type { Address } from "viem";
import { confirmShares } from "../chain/actions/confirm-shares.ts";
import { readVaultEvents, type VaultEvent } from "../chain/actions/read-vault-events.ts";
import { readCluster, type ClusterRecord } from "../chain/actions/read-cluster.ts";
import { readSecret } from "../chain/actions/read-secret.ts";
import { readSync } from "../chain/actions/read-sync.ts";
import { reshareSecret } from "../chain/actions/reshare-secret.ts";
import { listClusters } from "../chain/actions/list-clusters.ts";
import type { ReaderClient, WriterClient } from "../chain/clients.ts";
import type { VaultEnclaveClient, VaultEnclaveStatus } from "../enclave/vault/client.ts";
import type { SealedEnvelope, SignedConfirmation, TransferItem } from "../enclave/vault/service.ts";
import type { ShareSetDescriptorJson } from "../protocol/vault-descriptor.ts";
import { CloisterError } from "../util/base-error.ts";

/** What a peer's host offers another host: paged listing and sealed export. */
export interface VaultPeerApi {
  held(p: { after: bigint | null; limit: number }): Promise<{ tokens: { tokenId: bigint; version: bigint }[] }>;
  exportShares(p: { requester: Address; tokenIds: bigint[] }): Promise<{ items: TransferItem[]; missing: bigint[] }>;
}

/** What an owner's SDK needs of the host of one slot enclave. */
export interface VaultSlotApi extends VaultPeerApi {
  store(p: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }): Promise<{ tokenId: bigint; version: bigint }>;
  /** Many store envelopes for this slot in one call; per item refusals by index. */
  storeMany(p: { items: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }[]; atBlock?: bigint }): Promise<{ stored: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }>;
  retrieve(p: { request: unknown }): Promise<{ slot: number; version: bigint; descriptor: ShareSetDescriptorJson; envelope: HpkeSealed }>;
  status(): Promise<VaultEnclaveStatus>;
}

export interface VaultDirectory {
  /** The host API of `enclave`, or undefined when no host is known for it. */
  node(enclave: Address): VaultSlotApi | undefined;
  /** Where `enclave` listens for mutual-aTLS peer sessions, when it does: fetches then go enclave to enclave. */
  listenerOf?(enclave: Address): { host: string; port: number } | undefined;
}

export class VaultHostError extends CloisterError<"PEER_UNREACHABLE" | "BOOTSTRAP_FAILED" | "ENCLAVE_UNKNOWN"> {}

export type VaultHostEvent =
  | { type: "confirmed"; enclaves: number; shares: number; transactionHash: string; gasUsed: string }
  | { type: "fetched"; enclave: Address; from: Address; cluster: string; shares: number; refused: number; transport: "atls" | "host" }
  | { type: "crawled"; enclave: Address; fromBlock: string; toBlock: string; events: number }
  | { type: "bootstrap-page"; enclave: Address; from: Address; shares: number; cursor: string }
  | { type: "bootstrap-source-failed"; enclave: Address; from: Address; code: string }
  | { type: "error"; enclave?: Address; code: string; message: string };

export interface VaultHostOptions {
  writer: WriterClient;
  reader: ReaderClient;
  vault: Address;
  directory: VaultDirectory;
  /** Blocks per eth_getLogs while crawling (default 2,000). */
  logRange?: bigint;
  /** Shares per bootstrap page and per fetch (default 500). */
  pageSize?: number;
  /**
   * Bootstrap pages per bootstrapFrom call (default 10): each gate call has a timeout (120 s), and one call for
   * a whole slot of 10,000 shares outlasted it on the bench; 10 pages of 500 took about 20 to 45 s there.
   */
  pagesPerCall?: number;
  onEvent?: (e: VaultHostEvent) => void;
}

/**
 * Token confirmations per `confirm` transaction: about 13,000 to 17,000 gas each when a whole cluster confirms
 * together, so 500 stay near 7M. Larger calls (1,200, 16 to 18M gas) cost a development node more than they
 * save: EDR records a trace of every step it executes, and a call that large makes its trace memory grow
 * past what its allocator reuses, so every call faults in fresh pages (measured side by side, four runs each:
 * sync of 1,000 in 3 clusters, median 12.4 s at 1,200, 10.35 s at 500, the same at 250).
 */
const MAX_CONFIRMATIONS_PER_CALL = 500;

/**
 * Signed chunks an enclave hands over per flush round: its place and epoch are proved once per round (an
 * eth_getProof whose cost grows with the vault's storage), so a backlog of thousands (a bootstrap's
 * imports) takes a proof per eight calls, not per call.
 */
const CONFIRMATION_BATCHES = 8;

/** How often a bootstrapping enclave's imported pages are confirmed while its bootstrap runs. */
const BOOTSTRAP_CONFIRM_MS = 1_000;

/** One enclave's signed chunk, with the slot that signed it. */
interface Confirmable {
  s: Slot;
  c: SignedConfirmation;
}

/** Greedily packs chunks, in order, into calls of at most MAX_CONFIRMATIONS_PER_CALL token confirmations. */
function packConfirmations(chunks: readonly Confirmable[]): Confirmable[][] {
  const calls: Confirmable[][] = [];
  let current: Confirmable[] = [];
  let tokens = 0;
  for (const chunk of chunks) {
    if (current.length > 0 && tokens + chunk.c.shares.length > MAX_CONFIRMATIONS_PER_CALL) {
      calls.push(current);
      current = [];
      tokens = 0;
    }
    current.push(chunk);
    tokens += chunk.c.shares.length;
  }
  if (current.length) calls.push(current);
  return calls;
}

/** One supervised enclave and the handle the host exposes for it. */
class Slot implements VaultSlotApi {
  readonly enclave: VaultEnclaveClient;
  readonly #host: VaultHost;
  constructor(enclave: VaultEnclaveClient, host: VaultHost) {
    this.enclave = enclave;
    this.#host = host;
  }
  get address(): Address {
    return this.enclave.identity.signer;
  }
  async store(p: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }) {
    const r = await this.enclave.store(p);
    this.#host.scheduleConfirmations();
    return r;
  }
  async storeMany(p: { items: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }[]; atBlock?: bigint }) {
    const r = await this.enclave.storeMany(p);
    this.#host.scheduleConfirmations();
    return r;
  }
  retrieve(p: { request: unknown }) {
    return this.enclave.retrieve(p);
  }
  held(p: { after: bigint | null; limit: number }) {
    return this.enclave.held(p);
  }
  exportShares(p: { requester: Address; tokenIds: bigint[] }) {
    return this.enclave.exportShares(p);
  }
  status() {
    return this.enclave.status();
  }
}

export class VaultHost {
  readonly #o: Required<Omit<VaultHostOptions, "onEvent">> & Pick<VaultHostOptions, "onEvent">;
  readonly #slots = new Map<string, Slot>();
  #confirming: Promise<void> = Promise.resolve();
  #confirmTimer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #loop: NodeJS.Timeout | undefined;

  constructor(options: VaultHostOptions) {
    this.#o = { logRange: 2_000n, pageSize: 500, pagesPerCall: 10, ...options };
  }

  /** Supervise an enclave; returns the API the directory should map its address to. */
  add(enclave: VaultEnclaveClient): VaultSlotApi {
    const slot = new Slot(enclave, this);
    this.#slots.set(enclave.identity.signer.toLowerCase(), slot);
    return slot;
  }

  /** Stop supervising (the enclave was stopped or replaced). */
  remove(enclave: Address): void {
    this.#slots.delete(enclave.toLowerCase());
  }

  slot(enclave: Address): VaultSlotApi | undefined {
    return this.#slots.get(enclave.toLowerCase());
  }

  get enclaves(): VaultEnclaveClient[] {
    return [...this.#slots.values()].map((s) => s.enclave);
  }

  #emit(e: VaultHostEvent): void {
    this.#o.onEvent?.(e);
  }

  /** Debounced flush: stores that arrive together are confirmed in one transaction. */
  scheduleConfirmations(delayMs = 15): void {
    if (this.#confirmTimer) return;
    this.#confirmTimer = setTimeout(() => {
      this.#confirmTimer = undefined;
      void this.flushConfirmations().catch((e: unknown) => this.#emit({ type: "error", code: codeOf(e), message: String((e as Error).message) }));
    }, delayMs);
  }

  /**
   * Collects every supervised enclave's pending confirmations (up to CONFIRMATION_BATCHES signed chunks each,
   * under one place proof per enclave) and relays them packed into calls of at most MAX_CONFIRMATIONS_PER_CALL
   * token confirmations; repeats until none is left.
   */
  flushConfirmations(): Promise<void> {
    const run = this.#confirming.then(async () => {
      for (;;) {
        const max = Math.max(10, Math.floor(MAX_CONFIRMATIONS_PER_CALL / Math.max(1, this.#slots.size)));
        // One list for both: a slot supervised or dropped while the enclaves answer must not shift the indices.
        const slots = [...this.#slots.values()];
        const signed = await Promise.all(
          slots.map((s) =>
            s.enclave.confirmations({ max, batches: CONFIRMATION_BATCHES }).catch((): SignedConfirmation[] => []),
          ),
        );
        // Chunk i of every enclave before chunk i + 1 of any: each call carries several enclaves while it can.
        const chunks: Confirmable[] = [];
        for (let i = 0; i < CONFIRMATION_BATCHES; i++) signed.forEach((c, at) => c[i] && chunks.push({ s: slots[at]!, c: c[i]! }));
        if (chunks.length === 0) return;
        for (const call of packConfirmations(chunks)) await this.#relayConfirmations(call);
      }
    });
    this.#confirming = run.catch(() => {});
    return run;
  }

  /** One confirm call; on a revert, drops from each enclave's pending set what the chain already shows, or throws. */
  async #relayConfirmations(signed: Confirmable[]): Promise<void> {
    const items = signed.map(({ c }) => ({ cluster: c.cluster, slot: c.slot, shares: c.shares, signature: c.signature }));
    try {
      const tx = await confirmShares(this.#o.writer, this.#o.vault, items);
      await Promise.all(signed.map(({ s, c }) => s.enclave.markConfirmed({ shares: c.shares })));
      this.#emit({ type: "confirmed", enclaves: items.length, shares: items.reduce((n, i) => n + i.shares.length, 0), transactionHash: tx.hash, gasUsed: String(tx.receipt.gasUsed) });
    } catch (e) {
      // The batch is all or nothing: drop from each enclave's pending set what the chain already records
      // (a confirmation relayed before a crash), and what is no longer current, then try again.
      let cleared = 0;
      for (const { s, c } of signed) {
        const done = [];
        for (const share of c.shares) {
          const [sync, record] = await Promise.all([readSync(this.#o.reader, this.#o.vault, share.tokenId, c.cluster), readSecret(this.#o.reader, this.#o.vault, share.tokenId)]);
          if (sync.confirmedSlots.includes(c.slot) || record.burned || record.version !== share.version) done.push(share);
        }
        if (done.length) await s.enclave.markConfirmed({ shares: done });
        cleared += done.length;
      }
      if (cleared === 0) throw e;
    }
  }

  /** Where the chain says `enclave` sits now (routing only: the enclaves prove it themselves). */
  async #placeOf(enclave: Address): Promise<{ cluster: bigint; slot: number } | undefined> {
    this.#tick.clusters ??= listClusters(this.#o.reader, this.#o.vault);
    const listed = await this.#tick.clusters.catch((e: unknown) => {
      this.#tick.clusters = undefined;
      throw e;
    });
    for (const c of listed) {
      const slot = c.members.findIndex((m) => m.toLowerCase() === enclave.toLowerCase());
      if (slot >= 0) return { cluster: c.cluster, slot };
    }
    return undefined;
  }

  /**
   * Fetches `tokenIds` for `slot` from the member at the same slot of `cluster`, proved at `atBlock` (the crawl's
   * head: the same for every slot this host syncs in a round, so the node answers their proof requests once).
   */
  async #fetch(slot: Slot, place: { slot: number }, cluster: bigint, tokenIds: bigint[], atBlock: bigint): Promise<number> {
    const { members } = await readCluster(this.#o.reader, this.#o.vault, cluster);
    const source = members[place.slot];
    const listener = source ? this.#o.directory.listenerOf?.(source) : undefined;
    let imported = 0;
    if (source && listener) {
      // Enclave to enclave over mutual attested TLS: this host only carries TLS records.
      for (let i = 0; i < tokenIds.length; i += this.#o.pageSize) {
        const r = await slot.enclave.fetchFrom({ ...listener, peer: source, tokenIds: tokenIds.slice(i, i + this.#o.pageSize), atBlock });
        imported += r.imported.length;
        // Confirm each page as it lands, while the crawl fetches the next (not once the whole crawl is done).
        this.scheduleConfirmations();
        this.#emit({ type: "fetched", enclave: slot.address, from: source, cluster: String(cluster), shares: r.imported.length, refused: r.refused.length, transport: "atls" });
      }
      return imported;
    }
    const peer = source ? this.#o.directory.node(source) : undefined;
    if (!source || !peer) throw new VaultHostError("PEER_UNREACHABLE", `no host is known for slot ${place.slot} of cluster ${cluster}`);
    for (let i = 0; i < tokenIds.length; i += this.#o.pageSize) {
      const { items } = await peer.exportShares({ requester: slot.address, tokenIds: tokenIds.slice(i, i + this.#o.pageSize) });
      if (items.length === 0) continue;
      const r = await slot.enclave.importShares({ items: items.map(({ descriptor, envelope }) => ({ descriptor, envelope })), atBlock });
      imported += r.imported.length;
      this.scheduleConfirmations();
      this.#emit({ type: "fetched", enclave: slot.address, from: source, cluster: String(cluster), shares: r.imported.length, refused: r.refused.length, transport: "host" });
    }
    return imported;
  }

  /**
   * A new enclave fills its slot from the other clusters: pages of the peer's holdings, each exported sealed to
   * it and imported; the cursor is sealed in the enclave, so a restart resumes. A source that fails is
   * abandoned for the next cluster. Ends with bootstrapDone at the block it started from (the crawl covers
   * what happened since).
   */
  async bootstrap(enclave: Address): Promise<void> {
    const slot = this.#slots.get(enclave.toLowerCase());
    if (!slot) throw new VaultHostError("ENCLAVE_UNKNOWN", `enclave ${enclave} is not supervised by this host`);
    const startBlock = await this.#o.reader.getBlockNumber();
    this.#tick = { events: new Map() }; // fresh membership: the enclave may have joined a moment ago
    const place = await this.#placeOf(enclave);
    if (place) {
      const others = (await listClusters(this.#o.reader, this.#o.vault)).filter((c) => c.cluster !== place.cluster && c.size > place.slot);
      let done = others.length === 0;
      for (const c of others) {
        const source = c.members[place.slot]!;
        const peer = this.#o.directory.node(source);
        if (!peer) continue;
        try {
          const listener = this.#o.directory.listenerOf?.(source);
          if (listener) {
            // Enclave to enclave: the new enclave pages through the source's holdings on one mutual-aTLS session.
            // Its pages are confirmed while it fetches the next ones (the host hears of pages only at the end).
            // A call fetches at most pagesPerCall pages (each gate call has a timeout); the next resumes from the sealed cursor.
            const confirming = setInterval(() => this.scheduleConfirmations(), BOOTSTRAP_CONFIRM_MS);
            try {
              for (let done = false; !done; ) {
                const r = await slot.enclave.bootstrapFrom({ ...listener, peer: source, pageSize: this.#o.pageSize, maxPages: this.#o.pagesPerCall });
                for (const p of r.pages) this.#emit({ type: "bootstrap-page", enclave, from: source, shares: p.shares, cursor: String(p.cursor) });
                done = r.done;
              }
            } finally {
              clearInterval(confirming);
            }
          } else {
            let cursor = (await slot.enclave.status()).bootstrapCursor;
            for (;;) {
              const { tokens } = await peer.held({ after: cursor, limit: this.#o.pageSize });
              if (tokens.length === 0) break;
              const { items } = await peer.exportShares({ requester: enclave, tokenIds: tokens.map((t) => t.tokenId) });
              cursor = tokens.at(-1)!.tokenId;
              await slot.enclave.importShares({ items: items.map(({ descriptor, envelope }) => ({ descriptor, envelope })), cursor });
              this.#emit({ type: "bootstrap-page", enclave, from: source, shares: items.length, cursor: String(cursor) });
            }
          }
          done = true;
          break;
        } catch (e) {
          this.#emit({ type: "bootstrap-source-failed", enclave, from: source, code: codeOf(e) });
        }
      }
      if (!done) throw new VaultHostError("BOOTSTRAP_FAILED", `no cluster could serve slot ${place.slot} to ${enclave}; start their hosts and retry (the enclave resumes from its cursor)`);
    }
    await slot.enclave.bootstrapDone({ block: startBlock });
    this.scheduleConfirmations();
  }

  /**
   * One crawl for every supervised enclave that is past bootstrap: vault events from its checkpoint to the
   * head, in ranges; fetches what other clusters synced and it lacks, drops burned tokens, then advances
   * its sealed checkpoint (and ends its recovery).
   */
  syncOnce(): Promise<void> {
    this.#syncing ??= this.#syncAll().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  /** Per crawl tick: one eth_getLogs per range and one cluster listing, shared by every supervised enclave. */
  #tick: { events: Map<string, Promise<VaultEvent[]>>; clusters?: Promise<ClusterRecord[]> } = { events: new Map() };

  #events(from: bigint, to: bigint): Promise<VaultEvent[]> {
    const key = `${from}-${to}`;
    let p = this.#tick.events.get(key);
    if (!p) {
      p = readVaultEvents(this.#o.reader, this.#o.vault, from, to);
      this.#tick.events.set(key, p);
    }
    return p;
  }

  async #syncAll(): Promise<void> {
    this.#tick = { events: new Map() };
    const head = await this.#o.reader.getBlockNumber();
    await Promise.all([...this.#slots.values()].map((s) => this.#syncSlot(s, head).catch((e: unknown) => this.#emit({ type: "error", enclave: s.address, code: codeOf(e), message: String((e as Error).message) }))));
    await this.flushConfirmations();
  }

  async #syncSlot(slot: Slot, head: bigint): Promise<void> {
    const status = await slot.enclave.status();
    if (status.state === "bootstrapping" || status.checkpoint === null) return;
    const place = await this.#placeOf(slot.address);
    let from = status.checkpoint + 1n;
    while (from <= head) {
      const to = from + this.#o.logRange - 1n < head ? from + this.#o.logRange - 1n : head;
      const events = await this.#events(from, to);
      if (place) {
        const synced = events.filter((e) => e.kind === "synced" && e.cluster !== place.cluster) as { tokenId: bigint; cluster: bigint; version: bigint }[];
        for (const e of events) {
          if (e.kind === "burned") await slot.enclave.drop({ tokenId: e.tokenId });
          if (e.kind === "reshared" && e.cluster === place.cluster) {
            const { committed } = await slot.enclave.reshareCommit({ tokenId: e.tokenId });
            if (committed) this.scheduleConfirmations();
          }
        }
        const { tokenIds } = synced.length ? await slot.enclave.missing({ tokens: synced.map((e) => ({ tokenId: e.tokenId, version: e.version })) }) : { tokenIds: [] };
        const need = new Set(tokenIds);
        // A token synced in several clusters is fetched once, from the first cluster that can serve it; when
        // that fails the next cluster is tried. What no cluster served stops the crawl here, to be retried.
        const byCluster = new Map<bigint, bigint[]>();
        for (const e of synced) if (need.has(e.tokenId)) byCluster.set(e.cluster, [...(byCluster.get(e.cluster) ?? []), e.tokenId]);
        for (const [cluster, ids] of byCluster) {
          const still = [...new Set(ids)].filter((id) => need.has(id));
          if (still.length === 0) continue;
          try {
            await this.#fetch(slot, place, cluster, still, head);
            const left = await slot.enclave.missing({ tokens: synced.filter((e) => still.includes(e.tokenId)).map((e) => ({ tokenId: e.tokenId, version: e.version })) });
            for (const id of still) if (!left.tokenIds.includes(id)) need.delete(id);
          } catch (e) {
            this.#emit({ type: "error", enclave: slot.address, code: codeOf(e), message: String((e as Error).message) });
          }
        }
        if (need.size > 0) {
          throw new VaultHostError("PEER_UNREACHABLE", `${need.size} synced shares could not be fetched from any cluster; the crawl stops at block ${from - 1n} and retries`);
        }
      }
      this.#emit({ type: "crawled", enclave: slot.address, fromBlock: String(from), toBlock: String(to), events: events.length });
      await slot.enclave.advance({ block: to, caughtUp: to === head });
      from = to + 1n;
    }
    if (status.state === "recovering" && status.checkpoint >= head) await slot.enclave.advance({ block: head, caughtUp: true });
  }

  /**
   * Re-shares a token in `cluster` (every member supervised by this host): k holders send their shares to a
   * dealer enclave of the cluster, which refreshes them (same secret, new shares, version + 1) and seals each
   * new share to its slot's enclave; every member checks its new share and signs Reshare; k signatures are
   * relayed. The crawl then commits the pending shares on SecretReshared, the cluster confirms the new version,
   * and the other clusters fetch it on its SecretSynced. Old shares no longer match the chain's root.
   */
  async reshare(tokenId: bigint, cluster: bigint): Promise<{ version: bigint; newRoot: `0x${string}`; transactionHash: `0x${string}` }> {
    const { members } = await readCluster(this.#o.reader, this.#o.vault, cluster);
    const record = await readSecret(this.#o.reader, this.#o.vault, tokenId);
    const slots = members.map((m) => this.#slots.get(m.toLowerCase()));
    const up = slots.filter((s): s is Slot => s !== undefined);
    if (up.length < record.threshold) throw new VaultHostError("ENCLAVE_UNKNOWN", `only ${up.length} members of cluster ${cluster} are supervised here; a re-share needs ${record.threshold}`);
    const dealer = up[0]!;
    const items = [];
    for (const s of up) {
      if (items.length === record.threshold) break;
      try {
        const item = await s.enclave.reshareExport({ tokenId, dealer: dealer.address });
        items.push({ slot: item.slot, descriptor: item.descriptor, envelope: item.envelope });
      } catch (e) {
        this.#emit({ type: "error", enclave: s.address, code: codeOf(e), message: String((e as Error).message) });
      }
    }
    const dealt = await dealer.enclave.reshareDeal({ tokenId, items });
    const signatures: { slot: number; signature: `0x${string}` }[] = [];
    for (const e of dealt.envelopes) {
      const s = slots[e.slot];
      if (!s) continue;
      try {
        const accepted = await s.enclave.reshareAccept({ descriptor: dealt.descriptor, envelope: { enc: e.enc, ciphertext: e.ciphertext, seq: e.seq } });
        signatures.push({ slot: accepted.slot, signature: accepted.signature });
      } catch (err) {
        this.#emit({ type: "error", enclave: s.address, code: codeOf(err), message: String((err as Error).message) });
      }
    }
    signatures.sort((a, b) => a.slot - b.slot);
    const tx = await reshareSecret(this.#o.writer, this.#o.vault, { tokenId, version: record.version, newSharesRoot: dealt.root, cluster, signatures });
    // Commit at once where this host can (the crawl would do it on SecretReshared anyway).
    for (const s of up) await s.enclave.reshareCommit({ tokenId }).catch(() => ({ committed: false }));
    await this.flushConfirmations();
    return { version: record.version + 1n, newRoot: dealt.root, transactionHash: tx.hash };
  }

  /** Crawls every `intervalMs` until stopped. */
  start(intervalMs = 250): void {
    if (this.#loop) return;
    const tick = () => {
      this.#loop = setTimeout(() => {
        void this.syncOnce()
          .catch((e: unknown) => this.#emit({ type: "error", code: codeOf(e), message: String((e as Error).message) }))
          .finally(() => {
            if (this.#loop) tick();
          });
      }, intervalMs);
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.#loop) clearTimeout(this.#loop);
    this.#loop = undefined;
    if (this.#confirmTimer) clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    await this.#syncing?.catch(() => {});
    await this.#confirming;
  }
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "INTERNAL";
}
