/**
 * The vault enclave's operations, behind its gate (gate.ts, main.ts). Every
 * decision that matters is taken on chain state proved by VaultChain (never
 * on the host's word): the root a share is checked against, the owner a
 * retrieval must be signed by, the peer a share may go to. What the host can
 * still do is withhold: not relay a store, a fetch or a confirmation, or claim
 * the crawl is done early. That costs availability, never confidentiality.
 */
import { hexToBytes, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import type { HpkeSealed } from "../../crypto/hpke.ts";
import { reshareTypes, vaultContractDomain } from "../../protocol/vault-contract.ts";
import { confirmationDigest } from "../../protocol/vault-confirmation-digest.ts";
import { parseShareSetDescriptor, shareSetDescriptorJson, type ShareSetDescriptorJson } from "../../protocol/vault-descriptor.ts";
import { openVerifiedShare, sealRetrievalResponse, sealShare, sealShareSet, ShareOpener, ShareSealer, type ShareEnvelope } from "../../protocol/vault-envelopes.ts";
import { refreshShares } from "../../protocol/vault-reshare.ts";
import { verifyRetrievalRequest, vaultDomain, type RetrievalNonceStore } from "../../protocol/vault-retrieval.ts";
import { checkDescriptor, checkShareAgainst, shareSetRoot, type ShareSetDescriptor } from "../../protocol/vault-shares.ts";
import type { TrustedHeader } from "../chain-view/header.ts";
import type { SecretWord, VaultChain } from "./chain.ts";
import { VaultEnclaveError } from "./errors.ts";
import type { HeldShare, PersistentState, SealedVaultStore } from "./sealed-store.ts";
import { VaultStateMachine, type VaultState } from "./states.ts";

export interface VaultEnclaveKeys {
  account: PrivateKeyAccount;
  hpke: { privateKey: Uint8Array; publicKey: Uint8Array };
}

/** How far below its checkpoint a block the host names for a batch may be (#batchBlock). */
const HINTED_BLOCK_DEPTH = 64n;

/** A store or transfer envelope (one message of an HPKE context: see src/protocol/vault-envelopes.ts). */
export type SealedEnvelope = ShareEnvelope;

export interface SignedConfirmation {
  cluster: bigint;
  slot: number;
  epoch: number;
  shares: { tokenId: bigint; version: bigint }[];
  signature: Hex;
}

export interface TransferItem {
  tokenId: bigint;
  version: bigint;
  descriptor: ShareSetDescriptorJson;
  envelope: SealedEnvelope;
}

/** Retrieval nonces, persisted sealed after every claim. */
class SealedNonces implements RetrievalNonceStore {
  readonly map: Map<string, bigint>;
  readonly save: () => void;
  constructor(map: Map<string, bigint>, save: () => void) {
    this.map = map;
    this.save = save;
  }
  claim(key: string, notAfterBlock: bigint): boolean {
    if (this.map.has(key)) return false;
    this.map.set(key, notAfterBlock);
    this.save();
    return true;
  }
  prune(block: bigint): void {
    for (const [k, last] of this.map) if (last < block) this.map.delete(k);
  }
}

export class VaultService {
  readonly machine: VaultStateMachine;
  readonly #keys: VaultEnclaveKeys;
  readonly #chain: VaultChain;
  readonly #store: SealedVaultStore;
  readonly #state: PersistentState;
  readonly #nonces: SealedNonces;
  readonly #measurement: Hex;

  constructor(args: { keys: VaultEnclaveKeys; chain: VaultChain; store: SealedVaultStore; state: PersistentState; fresh: boolean; nonces: Map<string, bigint>; measurement: Hex }) {
    this.#keys = args.keys;
    this.#chain = args.chain;
    this.#store = args.store;
    this.#state = args.state;
    this.#measurement = args.measurement;
    this.#nonces = new SealedNonces(args.nonces, () => this.#store.saveNonces(this.#nonces.map));
    // A new data dir bootstraps; a restart (sealed state found, bootstrap finished) recovers from its checkpoint.
    this.machine = new VaultStateMachine(args.fresh || args.state.checkpoint === null ? "bootstrapping" : "recovering");
  }

  get state(): VaultState {
    return this.machine.state;
  }

  #domain() {
    return vaultDomain(this.#chain.config.chainId, this.#chain.config.vault);
  }

  /**
   * Where this enclave sits now, proved, with its cluster's epoch and the places of `peers`, usually in one
   * eth_getProof call (VaultChain.placesOf); NOT_A_MEMBER when it is in no cluster (or was replaced).
   */
  async #place(block: TrustedHeader, peers: readonly Address[] = []): Promise<{ cluster: bigint; slot: number; epoch: number; peers: ({ cluster: bigint; slot: number } | undefined)[] }> {
    const me = this.#keys.account.address;
    const proved = await this.#chain.placesOf([me, ...peers], block, me);
    const place = proved.places[0];
    if (!place) throw new VaultEnclaveError("NOT_A_MEMBER", `enclave ${this.#keys.account.address} is not a current member of any cluster of vault ${this.#chain.config.vault}; ask the cluster admin to add it`);
    if (!this.#state.place || this.#state.place.cluster !== place.cluster || this.#state.place.slot !== place.slot) {
      this.#state.place = place;
      this.#store.saveState(this.#state);
    }
    this.#cachedPlace = { at: Date.now(), place };
    return { ...place, epoch: proved.epoch!, peers: proved.places.slice(1) };
  }

  #cachedBlock: { at: number; header: Promise<TrustedHeader> } | undefined;
  #cachedPlace: { at: number; place: { cluster: bigint; slot: number } } | undefined;

  /**
   * A trusted block at most 100 ms old, for stores and imports: what they check (a token's record, the
   * share's commitment) cannot be in a block this enclave has not seen yet, and the contract re-checks
   * every confirmation. Retrieval and export always prove at a fresh block.
   */
  #recentBlock(): Promise<TrustedHeader> {
    const now = Date.now();
    if (!this.#cachedBlock || now - this.#cachedBlock.at > 100) {
      const header = this.#chain.block();
      this.#cachedBlock = { at: now, header };
      header.catch(() => (this.#cachedBlock = undefined));
    }
    return this.#cachedBlock.header;
  }

  /**
   * The block a batch is proved at. The host names one (`atBlock`), the same for every enclave of its cluster,
   * so that the node answers their identical proof requests once (src/chain/shared-proof-replies.ts). It is
   * taken when this enclave can trust it: at or below its checkpoint and at most HINTED_BLOCK_DEPTH below,
   * reached by parent links (each header fetched once: ChainView.headerBelow). An older block can only show an
   * older record: a share it no longer matches is refused, one for a superseded version is never taken over a
   * newer one (#accept), and the contract checks every confirmation against the current record. Otherwise the
   * recent block.
   */
  async #batchBlock(atBlock?: bigint): Promise<TrustedHeader> {
    let recent = await this.#recentBlock();
    if (atBlock === undefined || atBlock === recent.number) return recent;
    if (atBlock > recent.number) {
      recent = await this.#chain.block();
      this.#cachedBlock = { at: Date.now(), header: Promise.resolve(recent) };
    }
    if (atBlock >= recent.number || recent.number - atBlock > HINTED_BLOCK_DEPTH) return recent;
    return this.#chain.blockAt(recent, atBlock);
  }

  /**
   * The place proved in the last second (a replaced member's confirmations are refused on chain anyway) and the
   * records of `tokenIds`, for stores and imports. The records are proved on their own, not with this enclave's
   * place: the other enclaves of the cluster ask the same words at the same block, one answer for all.
   */
  async #recentPlaceAndRecords(tokenIds: readonly bigint[], block: TrustedHeader): Promise<{ slot: number; records: SecretWord[] }> {
    const place = this.#cachedPlace && Date.now() - this.#cachedPlace.at < 1_000 ? this.#cachedPlace.place : this.#place(block);
    const [{ slot }, records] = await Promise.all([place, this.#chain.secrets(tokenIds, block)]);
    return { slot, records };
  }

  /** The chain's record for a token at `block`, with the descriptor checked against its root. */
  async #checkedDescriptor(raw: unknown, block: TrustedHeader, proved?: SecretWord): Promise<{ descriptor: ShareSetDescriptor; root: Hex }> {
    let descriptor: ShareSetDescriptor;
    try {
      descriptor = parseShareSetDescriptor(raw);
    } catch (cause) {
      throw new VaultEnclaveError("BAD_REQUEST", "the share set descriptor is malformed", { cause });
    }
    const { chainId, vault, tokenId } = descriptor.binding;
    if (chainId !== BigInt(this.#chain.config.chainId) || vault.toLowerCase() !== this.#chain.config.vault.toLowerCase()) {
      throw new VaultEnclaveError("UNKNOWN_TOKEN", "the descriptor is for another chain or vault contract than this enclave's");
    }
    const record = proved ?? (await this.#chain.secret(tokenId, block));
    if (record.threshold === 0 || record.burned) throw new VaultEnclaveError("UNKNOWN_TOKEN", `token ${tokenId} is not stored in the vault, or was burned`, { details: { tokenId: String(tokenId) } });
    if (record.version !== descriptor.version) {
      throw new VaultEnclaveError("UNKNOWN_TOKEN", `token ${tokenId} is at version ${record.version} on chain, not ${descriptor.version}`, { details: { tokenId: String(tokenId), version: String(record.version) } });
    }
    checkDescriptor(descriptor, record.sharesRoot);
    return { descriptor, root: record.sharesRoot };
  }

  /** One item checked: the share to seal, or none when this version is held already. */
  async #accept(opener: ShareOpener, rawDescriptor: unknown, envelope: ShareEnvelope, block: TrustedHeader, slot: number, record?: SecretWord): Promise<{ tokenId: bigint; version: bigint; held?: HeldShare }> {
    const { descriptor, root } = await this.#checkedDescriptor(rawDescriptor, block, record);
    // TAMPERED_SHARE / WRONG_BINDING (VaultShareError) when the share is not the one the root commits to
    // (the descriptor was just checked against the proved root: only the share's commitment is left).
    const share = opener.open({ binding: descriptor.binding, version: descriptor.version, slot }, envelope);
    checkShareAgainst(descriptor, share);
    const tokenId = descriptor.binding.tokenId;
    const heldVersion = this.#store.get(tokenId)?.version;
    if (heldVersion !== undefined && heldVersion > descriptor.version) {
      share.share.fill(0);
      throw new VaultEnclaveError("SUPERSEDED_VERSION", `this enclave holds version ${heldVersion} of token ${tokenId}; version ${descriptor.version} is older`, {
        details: { tokenId: String(tokenId), version: String(heldVersion) },
      });
    }
    // Idempotent: the same version again (fetched from a second cluster, a store relayed twice) changes nothing.
    if (heldVersion === descriptor.version) {
      share.share.fill(0);
      return { tokenId, version: descriptor.version };
    }
    return { tokenId, version: descriptor.version, held: { tokenId, version: descriptor.version, share, descriptor, root } };
  }

  /** The owner's store envelope for this enclave's slot, relayed by the host. */
  async store(p: { descriptor: unknown; envelope: SealedEnvelope }): Promise<{ tokenId: bigint; version: bigint }> {
    this.machine.require("store");
    const { accepted, refused } = await this.#acceptMany("store", [p]);
    this.#store.saveState(this.#state);
    if (refused[0]) throw refused[0].error;
    return accepted[0]!;
  }

  /**
   * Many owners' store envelopes for this enclave's slot at once (the SDK's batched store): every token's
   * record is proved together, then each share is checked and sealed as `store` does; the state is saved once.
   * Per item refusals (TAMPERED_SHARE, WRONG_BINDING, UNKNOWN_TOKEN, …) come back by index.
   */
  async storeMany(p: { items: { descriptor: unknown; envelope: SealedEnvelope }[]; atBlock?: bigint }): Promise<{ stored: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }> {
    this.machine.require("store");
    const { accepted, refused } = await this.#acceptMany("store", p.items, p.atBlock);
    this.#store.saveState(this.#state);
    return { stored: accepted, refused: refused.map(({ index, error }) => ({ index, code: codeOf(error) })) };
  }

  /** Shares fetched from a peer (replication or bootstrap). `cursor` records bootstrap progress. */
  async importShares(p: { items: { descriptor: unknown; envelope: SealedEnvelope }[]; cursor?: bigint; atBlock?: bigint }): Promise<{ imported: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }> {
    this.machine.require("importShares");
    const { accepted, refused } = await this.#acceptMany("transfer", p.items, p.atBlock);
    if (p.cursor !== undefined) this.#state.bootstrapCursor = p.cursor;
    this.#store.saveState(this.#state);
    return { imported: accepted, refused: refused.map(({ index, error }) => ({ index, code: codeOf(error) })) };
  }

  /**
   * Proves every item's record in one go (one eth_getProof per 512 tokens; this enclave's place beside it when
   * not proved in the last second) at the block the host named when this enclave can trust it (#batchBlock),
   * then checks and seals each share.
   */
  async #acceptMany(
    purpose: "store" | "transfer",
    items: { descriptor: unknown; envelope: SealedEnvelope }[],
    atBlock?: bigint,
  ): Promise<{ accepted: { tokenId: bigint; version: bigint }[]; refused: { index: number; error: unknown }[] }> {
    const accepted: { tokenId: bigint; version: bigint }[] = [];
    const refused: { index: number; error: unknown }[] = [];
    if (items.length === 0) return { accepted, refused };
    let block = await this.#batchBlock(atBlock);
    const ids = items.map((item) => {
      const id = (item.descriptor as { binding?: { tokenId?: unknown } } | null)?.binding?.tokenId;
      return typeof id === "string" && /^\d{1,78}$/.test(id) ? BigInt(id) : typeof id === "bigint" ? id : 0n;
    });
    const proved = await this.#recentPlaceAndRecords(ids, block);
    const { slot } = proved;
    let { records } = proved;
    if (records.some((r) => r.threshold === 0)) {
      // Newer than the recent block: prove again at a fresh one.
      block = await this.#chain.block();
      this.#cachedBlock = { at: Date.now(), header: Promise.resolve(block) };
      records = await this.#chain.secrets(ids, block);
    }
    // One after another: each share is an HPKE open and a commitment check, synchronous once the records are
    // proved; the accepted ones are then sealed together, one segment for the call. One opener for the call: a
    // batch's envelopes share one HPKE context, decapsulated once.
    const opener = new ShareOpener(this.#keys.hpke.privateKey, purpose);
    const sealing: HeldShare[] = [];
    for (const [index, item] of items.entries()) {
      try {
        const { tokenId, version, held } = await this.#accept(opener, item.descriptor, item.envelope, block, slot, records[index]);
        if (held) sealing.push(held);
        accepted.push({ tokenId, version });
      } catch (error) {
        refused.push({ index, error });
      }
    }
    // One sealed segment for the call's shares (the store keeps these share objects as the held ones).
    this.#store.putMany(sealing);
    for (const held of sealing) this.#state.unconfirmed.set(held.tokenId, held.version);
    return { accepted, refused };
  }

  /**
   * EIP-712 Confirmations over the held shares not yet confirmed, for the host to relay: up to `batches` of
   * them (default 1), each over at most `max` shares, under one proof of this enclave's place and epoch (a
   * large backlog, such as a bootstrap's imports, costs one proof per `batches` transactions rather than one
   * per transaction). Empty when nothing is pending. They sign the cluster's current epoch; a confirmation
   * already recorded stays valid when another member is replaced (the contract drops only the replaced
   * slot's), so a replacement leaves nothing to sign again here.
   */
  async confirmations(p: { max: number; batches?: number }): Promise<SignedConfirmation[]> {
    this.machine.require("confirmations");
    if (this.#state.unconfirmed.size === 0) return [];
    const block = await this.#chain.block();
    const { cluster, slot, epoch } = await this.#place(block);
    const entries = [...this.#state.unconfirmed].slice(0, p.max * (p.batches ?? 1));
    const chainId = BigInt(this.#chain.config.chainId);
    const vault = this.#chain.config.vault;
    const signed: SignedConfirmation[] = [];
    for (let at = 0; at < entries.length; at += p.max) {
      const shares = entries.slice(at, at + p.max).map(([tokenId, version]) => ({ tokenId, version, sharesRoot: this.#store.get(tokenId)!.root }));
      const signature = await this.#keys.account.sign({ hash: confirmationDigest(chainId, vault, { cluster, epoch, slot, shares }) });
      signed.push({ cluster, slot, epoch, shares: shares.map(({ tokenId, version }) => ({ tokenId, version })), signature });
    }
    return signed;
  }

  /**
   * The host reports confirmations it relayed. Trusting it costs nothing: a host that lies only keeps
   * confirmations from being signed again.
   */
  async markConfirmed(p: { shares: { tokenId: bigint; version: bigint }[] }): Promise<void> {
    this.machine.require("markConfirmed");
    for (const { tokenId, version } of p.shares) if (this.#state.unconfirmed.get(tokenId) === version) this.#state.unconfirmed.delete(tokenId);
    this.#store.saveState(this.#state);
  }

  /** The owner's signed request: checked against ownerOf proved at a trusted block; the share goes sealed to the owner's key. */
  async retrieve(p: { request: unknown }): Promise<{ slot: number; version: bigint; descriptor: ShareSetDescriptorJson; envelope: HpkeSealed }> {
    this.machine.require("retrieve");
    const tokenId = tokenIdOf(p.request);
    const held = this.#store.get(tokenId);
    if (!held) throw new VaultEnclaveError("SHARE_MISSING", `this enclave holds no share of token ${tokenId}`, { details: { tokenId: String(tokenId) } });
    const block = await this.#chain.block();
    const { record, owner } = await this.#chain.secretAndOwner(tokenId, block);
    if (record.burned || record.threshold === 0) throw new VaultEnclaveError("UNKNOWN_TOKEN", `token ${tokenId} was burned`, { details: { tokenId: String(tokenId) } });
    if (record.version !== held.version) throw new VaultEnclaveError("SHARE_MISSING", `this enclave holds version ${held.version} of token ${tokenId}, the chain is at ${record.version}`);
    this.#nonces.prune(block.number);
    const verified = await verifyRetrievalRequest(p.request, { domain: this.#domain(), tokenId, owner, trustedBlock: block.number, nonces: this.#nonces });
    const envelope = await sealRetrievalResponse(verified.ownerKey, { binding: held.descriptor.binding, version: held.version, slot: held.share.slot }, verified.digest, held.share);
    return { slot: held.share.slot, version: held.version, descriptor: shareSetDescriptorJson(held.descriptor), envelope };
  }

  /**
   * Shares for a peer: only to the active enclave at the same slot of another cluster of this vault, running
   * this same vault image (the registry's measurement), sealed to the HPKE key the registry holds for it.
   */
  async exportShares(p: { requester: Address; tokenIds: bigint[] }): Promise<{ items: TransferItem[]; missing: bigint[] }> {
    this.machine.require("exportShares");
    const block = await this.#chain.block();
    const mine = await this.#place(block, [p.requester]);
    const peer = mine.peers[0];
    if (!peer || peer.slot !== mine.slot || peer.cluster === mine.cluster) {
      throw new VaultEnclaveError("PEER_REFUSED", `enclave ${p.requester} is not the member at slot ${mine.slot} of another cluster; shares of this slot go to nobody else`, {
        details: { requester: p.requester, slot: mine.slot },
      });
    }
    const entry = await this.#chain.registryEntry(p.requester, block);
    if (entry.revoked || entry.expiry <= block.timestamp) throw new VaultEnclaveError("PEER_REFUSED", `enclave ${p.requester} is revoked or its registration expired`, { details: { requester: p.requester } });
    if (entry.measurement.toLowerCase() !== this.#measurement.toLowerCase()) {
      throw new VaultEnclaveError("PEER_REFUSED", `enclave ${p.requester} runs another image than this vault enclave`, { details: { requester: p.requester, measurement: entry.measurement } });
    }
    // The page's shares are messages of one HPKE context to the requester's registered key.
    const sealer = new ShareSealer(hexToBytes(entry.hpkePublicKey), "transfer");
    const items: TransferItem[] = [];
    const missing: bigint[] = [];
    for (const tokenId of p.tokenIds) {
      const held = this.#store.get(tokenId);
      if (!held) {
        missing.push(tokenId);
        continue;
      }
      const envelope = sealer.seal({ binding: held.descriptor.binding, version: held.version, slot: held.share.slot }, held.share);
      items.push({ tokenId, version: held.version, descriptor: shareSetDescriptorJson(held.descriptor), envelope });
    }
    return { items, missing };
  }

  /** Which of `tokens` this enclave does not hold at that version (ids and versions are public). */
  missing(p: { tokens: { tokenId: bigint; version: bigint }[] }): { tokenIds: bigint[] } {
    this.machine.require("held");
    return { tokenIds: p.tokens.filter((t) => this.#store.get(t.tokenId)?.version !== t.version).map((t) => t.tokenId) };
  }

  /** A peer of the same cluster (or this enclave itself), active, running this image: its registered HPKE key. */
  async #clusterPeerKey(peer: Address, cluster: bigint, block: TrustedHeader): Promise<Uint8Array> {
    const place = await this.#chain.placeOf(peer, block);
    if (!place || place.cluster !== cluster) throw new VaultEnclaveError("PEER_REFUSED", `enclave ${peer} is not a current member of cluster ${cluster}`, { details: { peer } });
    const entry = await this.#chain.registryEntry(peer, block);
    if (entry.revoked || entry.expiry <= block.timestamp) throw new VaultEnclaveError("PEER_REFUSED", `enclave ${peer} is revoked or its registration expired`, { details: { peer } });
    if (entry.measurement.toLowerCase() !== this.#measurement.toLowerCase()) throw new VaultEnclaveError("PEER_REFUSED", `enclave ${peer} runs another image than this vault enclave`, { details: { peer } });
    return hexToBytes(entry.hpkePublicKey);
  }

  /** Re-share, step 1 (a holder): its share of the current version, sealed to the refresh dealer, a member of its own cluster. */
  async reshareExport(p: { tokenId: bigint; dealer: Address }): Promise<TransferItem & { slot: number }> {
    this.machine.require("exportShares");
    const block = await this.#chain.block();
    const mine = await this.#place(block);
    const key = await this.#clusterPeerKey(p.dealer, mine.cluster, block);
    const held = this.#store.get(p.tokenId);
    const record = await this.#chain.secret(p.tokenId, block);
    if (!held || held.version !== record.version) throw new VaultEnclaveError("SHARE_MISSING", `this enclave holds no share of the current version of token ${p.tokenId}`);
    const envelope = await sealShare(key, "transfer", { binding: held.descriptor.binding, version: held.version, slot: held.share.slot }, held.share);
    return { tokenId: p.tokenId, version: held.version, slot: held.share.slot, descriptor: shareSetDescriptorJson(held.descriptor), envelope };
  }

  /**
   * Re-share, step 2 (the refresh dealer): checks k shares against the chain's root, recombines the payload
   * inside this enclave, splits it again at version + 1 (same secret commitment, fresh polynomials, x-coordinates
   * and salts) and seals each new share to the registered key of the member at its slot. The plaintext is
   * zeroed before it returns; only the new public descriptor and the sealed shares leave.
   */
  async reshareDeal(p: { tokenId: bigint; items: { slot: number; descriptor: unknown; envelope: SealedEnvelope }[] }): Promise<{ descriptor: ShareSetDescriptorJson; root: Hex; envelopes: { slot: number; enc: Uint8Array; ciphertext: Uint8Array; seq: number }[] }> {
    this.machine.require("exportShares");
    if (p.items.length === 0) throw new VaultEnclaveError("BAD_REQUEST", "a re-share needs k shares");
    const block = await this.#chain.block();
    const mine = await this.#place(block);
    const { descriptor, root } = await this.#checkedDescriptor(p.items[0]!.descriptor, block);
    if (descriptor.binding.tokenId !== p.tokenId) throw new VaultEnclaveError("BAD_REQUEST", "the shares are of another token");
    const shares = [];
    const opener = new ShareOpener(this.#keys.hpke.privateKey, "transfer");
    for (const item of p.items) shares.push(opener.openVerified(descriptor, root, item.slot, item.envelope));
    const set = await refreshShares(descriptor, root, shares);
    for (const s of shares) s.share.fill(0);
    try {
      const keys = [];
      for (let slot = 0; slot < set.descriptor.shareCount; slot++) {
        const member = await this.#chain.memberAt(mine.cluster, slot, block);
        keys.push(await this.#clusterPeerKey(member, mine.cluster, block));
      }
      const envelopes = await sealShareSet(set, keys, "store");
      return { descriptor: shareSetDescriptorJson(set.descriptor), root: set.root, envelopes: envelopes.map((e) => ({ slot: e.slot, enc: e.enc, ciphertext: e.ciphertext, seq: e.seq })) };
    } finally {
      for (const s of set.shares) s.share.fill(0);
    }
  }

  /**
   * Re-share, step 3 (every member): the new share for its slot, checked against the new descriptor, which
   * must be a refresh of the one it holds (same token, secret commitment, k and n, version + 1); kept sealed as
   * pending, and a Reshare signature over (old version and root, new root, cluster, epoch) for the host to relay.
   */
  async reshareAccept(p: { descriptor: unknown; envelope: SealedEnvelope }): Promise<{ slot: number; signature: Hex; newRoot: Hex }> {
    this.machine.require("exportShares");
    const block = await this.#chain.block();
    const { cluster, slot, epoch } = await this.#place(block);
    let d: ShareSetDescriptor;
    try {
      d = parseShareSetDescriptor(p.descriptor);
    } catch (cause) {
      throw new VaultEnclaveError("BAD_REQUEST", "the new share set descriptor is malformed", { cause });
    }
    const tokenId = d.binding.tokenId;
    const held = this.#store.get(tokenId);
    const record = await this.#chain.secret(tokenId, block);
    if (!held || held.version !== record.version || record.burned) throw new VaultEnclaveError("SHARE_MISSING", `this enclave holds no share of the current version of token ${tokenId}`);
    const h = held.descriptor;
    if (d.version !== held.version + 1n || d.secretCommitment !== h.secretCommitment || d.threshold !== record.threshold || d.shareCount !== record.shares || d.binding.vault.toLowerCase() !== h.binding.vault.toLowerCase() || d.binding.chainId !== h.binding.chainId) {
      throw new VaultEnclaveError("BAD_REQUEST", `the new share set is not a refresh of version ${held.version} of token ${tokenId} (same secret commitment, k and n, next version)`);
    }
    const newRoot = shareSetRoot(d);
    const share = await openVerifiedShare(this.#keys.hpke.privateKey, "store", d, newRoot, slot, p.envelope);
    await this.#store.putPending({ tokenId, version: d.version, share, descriptor: d, root: newRoot });
    const signature = await this.#keys.account.signTypedData({
      domain: vaultContractDomain(BigInt(this.#chain.config.chainId), this.#chain.config.vault),
      types: reshareTypes,
      primaryType: "Reshare",
      message: { tokenId, version: record.version, sharesRoot: record.sharesRoot, newSharesRoot: newRoot, cluster, epoch },
    });
    return { slot, signature, newRoot };
  }

  /** After SecretReshared: the pending share becomes the held one (the old share is overwritten) once the chain names its root. */
  async reshareCommit(p: { tokenId: bigint }): Promise<{ committed: boolean }> {
    this.machine.require("drop");
    const pending = await this.#store.takePending(p.tokenId);
    if (!pending) return { committed: false };
    const record = await this.#chain.secret(p.tokenId, await this.#chain.block());
    if (record.version !== pending.version || record.sharesRoot.toLowerCase() !== pending.root.toLowerCase()) {
      if (record.version >= pending.version) this.#store.removePending(p.tokenId);
      return { committed: false };
    }
    this.#store.put(pending);
    this.#store.removePending(p.tokenId);
    this.#state.unconfirmed.set(p.tokenId, pending.version);
    this.#store.saveState(this.#state);
    return { committed: true };
  }

  /** Held token ids, paged (for a bootstrapping peer's host; ids and versions are public on chain anyway). */
  held(p: { after: bigint | null; limit: number }): { tokens: { tokenId: bigint; version: bigint }[] } {
    this.machine.require("held");
    return { tokens: this.#store.page(p.after, p.limit).map((h) => ({ tokenId: h.tokenId, version: h.version })) };
  }

  /** Drops a share once the chain says the token is burned (or at a later version than the one held). */
  async drop(p: { tokenId: bigint }): Promise<{ dropped: boolean }> {
    this.machine.require("drop");
    const held = this.#store.get(p.tokenId);
    if (!held) return { dropped: false };
    const record = await this.#chain.secret(p.tokenId, await this.#chain.block());
    if (!record.burned && record.version === held.version) return { dropped: false };
    this.#store.remove(p.tokenId);
    this.#state.unconfirmed.delete(p.tokenId);
    this.#store.saveState(this.#state);
    return { dropped: true };
  }

  async bootstrapDone(p: { block: bigint }): Promise<void> {
    this.machine.fire("bootstrapDone");
    this.#state.checkpoint = p.block;
    this.#state.bootstrapCursor = null;
    this.#store.saveState(this.#state);
  }

  /** The host crawled vault events up to `block`; `caughtUp` ends recovery. */
  async advance(p: { block: bigint; caughtUp: boolean }): Promise<void> {
    this.machine.require("advance");
    if (this.#state.checkpoint === null || p.block > this.#state.checkpoint) this.#state.checkpoint = p.block;
    this.#store.saveState(this.#state);
    if (p.caughtUp && this.machine.state !== "serving") this.machine.fire("caughtUp");
  }

  status(): { state: VaultState; place: { cluster: bigint; slot: number } | null; shares: number; unconfirmed: number; checkpoint: bigint | null; bootstrapCursor: bigint | null } {
    return {
      state: this.machine.state,
      place: this.#state.place,
      shares: this.#store.size,
      unconfirmed: this.#state.unconfirmed.size,
      checkpoint: this.#state.checkpoint,
      bootstrapCursor: this.#state.bootstrapCursor,
    };
  }
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "INTERNAL";
}

function tokenIdOf(request: unknown): bigint {
  const raw = (request as { message?: { tokenId?: unknown } } | null)?.message?.tokenId;
  if (typeof raw === "bigint") return raw;
  if (typeof raw === "string" && /^\d{1,78}$/.test(raw)) return BigInt(raw);
  throw new VaultEnclaveError("BAD_REQUEST", "the retrieval request names no token id");
}
