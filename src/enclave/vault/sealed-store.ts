/**
 * The vault enclave's persistent state, every byte of it sealed
 * (src/enclave/sealing.ts, AES-256-GCM under a key derived from the sealing
 * root and the vault image's measurement):
 *
 * - `vault/shares/seg-<n>.bin`: a **segment**, the shares one call stored
 *   or imported (a page of 500, a store batch, one share), each with its
 *   slot, salt, share bytes, public descriptor and root, or a removal; n
 *   grows with every segment written and is sealed inside, so a renamed
 *   segment does not load. Segments are read in order and a later entry of a
 *   token wins. A segment none of whose entries is live any more is deleted;
 *   one that records a removal is kept (an older segment may still hold that
 *   token's share, which the removal must keep hiding);
 * - `vault/pending/<token id, hex>.bin`: a re-share's new share until the
 *   chain records its version;
 * - `vault/state.bin`: the state machine's persistent part (place, sync
 *   checkpoint, bootstrap cursor, shares not yet confirmed);
 * - `vault/nonces.bin`: retrieval nonces served and not yet expired.
 *
 * Why segments: a file per share cost a file creation and a rename per share,
 * about a fifth of an importing enclave's CPU in the sync benchmark; a
 * segment costs them once per page.
 *
 * Writes go to a temporary file renamed into place, so a crash leaves the old
 * or the new version, never half of one (a segment is written before the
 * segments it supersedes are deleted). They are synchronous: the promise
 * API's thread-pool round trips per file cost more CPU than the writes, and
 * writes to one path land in call order without a queue.
 */
import { createSecretKey, hkdfSync, type KeyObject } from "node:crypto";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import { parseShareSetDescriptor, shareSetDescriptorJson, type ShareSetDescriptorJson } from "../../protocol/vault-descriptor.ts";
import type { ShareSetDescriptor, VaultShare } from "../../protocol/vault-shares.ts";
import { seal, unseal } from "../sealing.ts";
import { VaultEnclaveError } from "./errors.ts";

const VAULT_SEALING_INFO = "cloister/vault-sealing/v1";

/** A share the enclave holds. */
export interface HeldShare {
  tokenId: bigint;
  version: bigint;
  share: VaultShare;
  descriptor: ShareSetDescriptor;
  root: `0x${string}`;
}

export interface PersistentState {
  /** Where the chain last said this enclave sits (informational; every use re-proves it). */
  place: { cluster: bigint; slot: number } | null;
  /** Last block whose vault events were crawled; null until bootstrap ends. */
  checkpoint: bigint | null;
  /** Bootstrap: the last token id imported from the current source (paged, resumable). */
  bootstrapCursor: bigint | null;
  /** Shares held and not yet confirmed on chain: token id → version. */
  unconfirmed: Map<bigint, bigint>;
}

const hex = z.string().regex(/^0x[0-9a-f]*$/);
const dec = z.string().regex(/^\d+$/);
const shareFileSchema = z.strictObject({ tokenId: dec, version: dec, slot: z.number().int().min(0).max(255), salt: hex, share: hex, descriptor: z.unknown(), root: hex });
const removalSchema = z.strictObject({ tokenId: dec, removed: z.literal(true) });
const segmentSchema = z.strictObject({ segment: z.number().int().min(0), entries: z.array(z.union([shareFileSchema, removalSchema])) });
const SEGMENT_NAME = /^seg-(\d{1,15})\.bin$/;

/** A segment's bookkeeping: the tokens whose latest entry it holds, and whether it records a removal. */
interface Segment {
  live: Set<bigint>;
  removals: boolean;
}
const stateFileSchema = z.strictObject({
  place: z.strictObject({ cluster: dec, slot: z.number().int() }).nullable(),
  checkpoint: dec.nullable(),
  bootstrapCursor: dec.nullable(),
  unconfirmed: z.array(z.tuple([dec, dec])),
});
const noncesFileSchema = z.array(z.tuple([z.string(), dec]));

export class SealedVaultStore {
  readonly #key: KeyObject;
  readonly #dir: string;
  readonly #shares = new Map<bigint, HeldShare>();
  readonly #segments = new Map<number, Segment>();
  /** The segment that holds each held token's latest entry. */
  readonly #segmentOf = new Map<bigint, number>();
  #nextSegment = 0;
  #tmpCounter = 0;

  private constructor(key: KeyObject, dir: string) {
    this.#key = key;
    this.#dir = dir;
  }

  /** Opens (creating) `<dataDir>/vault` and loads every sealed share; `fresh` when no state was ever written. */
  static async open(dataDir: string, sealingKey: Uint8Array): Promise<{ store: SealedVaultStore; state: PersistentState; fresh: boolean; nonces: Map<string, bigint> }> {
    const key = createSecretKey(new Uint8Array(hkdfSync("sha256", sealingKey, new Uint8Array(0), VAULT_SEALING_INFO, 32)));
    const dir = join(dataDir, "vault");
    await mkdir(join(dir, "shares"), { recursive: true });
    const store = new SealedVaultStore(key, dir);
    const segments = (await readdir(join(dir, "shares")))
      .filter((name) => name.endsWith(".bin"))
      .map((name) => {
        const m = SEGMENT_NAME.exec(name);
        if (!m) throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `shares/${name} is not a share segment (seg-<n>.bin): it was put there by something else than this enclave`);
        return { n: Number(m[1]), name };
      })
      .sort((a, b) => a.n - b.n);
    for (const { n, name } of segments) {
      const segment = parse(segmentSchema, await store.#read(join(dir, "shares", name)), `shares/${name}`);
      if (segment.segment !== n) throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `sealed share segment ${name} is segment ${segment.segment}: the file was moved`);
      store.#nextSegment = n + 1;
      store.#apply(n, segment.entries.map((e) => ("removed" in e ? { removed: BigInt(e.tokenId) } : store.#decodeShare(e, `shares/${name}`))));
    }
    const stateBytes = await store.#readOptional(join(dir, "state.bin"));
    const state: PersistentState = stateBytes ? decodeState(stateBytes) : { place: null, checkpoint: null, bootstrapCursor: null, unconfirmed: new Map() };
    const nonceBytes = await store.#readOptional(join(dir, "nonces.bin"));
    const nonces = new Map<string, bigint>(nonceBytes ? parse(noncesFileSchema, nonceBytes, "nonces.bin").map(([k, b]) => [k, BigInt(b)] as const) : []);
    return { store, state, fresh: !stateBytes, nonces };
  }

  get(tokenId: bigint): HeldShare | undefined {
    return this.#shares.get(tokenId);
  }

  get size(): number {
    return this.#shares.size;
  }

  /** Held token ids in ascending order after `after`, at most `limit`. */
  page(after: bigint | null, limit: number): HeldShare[] {
    const ids = [...this.#shares.keys()].filter((id) => after === null || id > after).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return ids.slice(0, limit).map((id) => this.#shares.get(id)!);
  }

  /** A re-share's new share, kept sealed until the chain records its version (`vault/pending/`). */
  async putPending(held: HeldShare): Promise<void> {
    await mkdir(join(this.#dir, "pending"), { recursive: true });
    this.#write(join(this.#dir, "pending", `${held.tokenId.toString(16)}.bin`), this.#encode(held));
  }

  async takePending(tokenId: bigint): Promise<HeldShare | undefined> {
    const path = join(this.#dir, "pending", `${tokenId.toString(16)}.bin`);
    const plain = await this.#readOptional(path);
    if (!plain) return undefined;
    const held = this.#decodeShare(parse(shareFileSchema, plain, `pending/${tokenId.toString(16)}.bin`), `pending/${tokenId.toString(16)}.bin`);
    if (held.tokenId !== tokenId) throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `pending share file for token ${tokenId} holds another token`);
    return held;
  }

  removePending(tokenId: bigint): void {
    rmSync(join(this.#dir, "pending", `${tokenId.toString(16)}.bin`), { force: true });
  }

  #entry(held: HeldShare) {
    return {
      tokenId: held.tokenId.toString(),
      version: held.version.toString(),
      slot: held.share.slot,
      salt: toHex(held.share.salt),
      share: toHex(held.share.share),
      descriptor: shareSetDescriptorJson(held.descriptor),
      root: held.root.toLowerCase(),
    };
  }

  #encode(held: HeldShare): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.#entry(held)));
  }

  /** Seals `held` (the shares of one call) as one new segment; the store keeps these share objects as the held ones. */
  putMany(held: readonly HeldShare[]): void {
    if (held.length === 0) return;
    this.#writeSegment(held.map((h) => this.#entry(h)), held);
  }

  put(held: HeldShare): void {
    this.putMany([held]);
  }

  /** Removes a share: a segment recording the removal, kept while an older segment may hold the token. */
  remove(tokenId: bigint): void {
    if (!this.#shares.has(tokenId)) return;
    this.#writeSegment([{ tokenId: tokenId.toString(), removed: true }], [{ removed: tokenId }]);
  }

  #writeSegment(json: unknown[], entries: readonly (HeldShare | { removed: bigint })[]): void {
    const n = this.#nextSegment++;
    const plain = new TextEncoder().encode(JSON.stringify({ segment: n, entries: json }));
    this.#write(join(this.#dir, "shares", `seg-${n}.bin`), plain);
    plain.fill(0);
    this.#apply(n, entries);
  }

  /** Segment n's entries, in order, over what older segments held; deletes the segments this leaves without a live entry. */
  #apply(n: number, entries: readonly (HeldShare | { removed: bigint })[]): void {
    const segment: Segment = { live: new Set(), removals: false };
    this.#segments.set(n, segment);
    const superseded = new Set<number>();
    for (const e of entries) {
      const tokenId = "removed" in e ? e.removed : e.tokenId;
      const previous = this.#segmentOf.get(tokenId);
      if (previous !== undefined) {
        this.#segments.get(previous)!.live.delete(tokenId);
        superseded.add(previous);
      }
      if ("removed" in e) {
        segment.removals = true;
        this.#shares.delete(tokenId);
        this.#segmentOf.delete(tokenId);
      } else {
        segment.live.add(tokenId);
        this.#shares.set(tokenId, e);
        this.#segmentOf.set(tokenId, n);
      }
    }
    for (const old of superseded) {
      const s = this.#segments.get(old)!;
      if (old === n || s.live.size > 0 || s.removals) continue;
      rmSync(join(this.#dir, "shares", `seg-${old}.bin`), { force: true });
      this.#segments.delete(old);
    }
  }

  saveState(state: PersistentState): void {
    const json = {
      place: state.place ? { cluster: state.place.cluster.toString(), slot: state.place.slot } : null,
      checkpoint: state.checkpoint === null ? null : state.checkpoint.toString(),
      bootstrapCursor: state.bootstrapCursor === null ? null : state.bootstrapCursor.toString(),
      unconfirmed: [...state.unconfirmed].map(([t, v]) => [t.toString(), v.toString()]),
    };
    this.#write(join(this.#dir, "state.bin"), new TextEncoder().encode(JSON.stringify(json)));
  }

  saveNonces(nonces: Map<string, bigint>): void {
    this.#write(join(this.#dir, "nonces.bin"), new TextEncoder().encode(JSON.stringify([...nonces].map(([k, b]) => [k, b.toString()]))));
  }

  #decodeShare(f: z.infer<typeof shareFileSchema>, name: string): HeldShare {
    let descriptor: ShareSetDescriptor;
    try {
      descriptor = parseShareSetDescriptor(f.descriptor);
    } catch (cause) {
      throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `sealed vault file ${name} holds a malformed descriptor`, { cause });
    }
    const held = {
      tokenId: BigInt(f.tokenId),
      version: BigInt(f.version),
      share: { slot: f.slot, salt: fromHex(f.salt as `0x${string}`), share: fromHex(f.share as `0x${string}`) },
      descriptor,
      root: f.root as `0x${string}`,
    };
    if (descriptor.binding.tokenId !== held.tokenId || descriptor.version !== held.version) {
      throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `sealed vault file ${name} holds a share of token ${held.tokenId} under another token's or version's descriptor`);
    }
    return held;
  }

  async #read(path: string): Promise<Uint8Array> {
    return unseal(this.#key, new Uint8Array(await readFile(path)), path);
  }

  async #readOptional(path: string): Promise<Uint8Array | undefined> {
    try {
      return await this.#read(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  #write(path: string, plain: Uint8Array): void {
    const tmp = `${path}.${++this.#tmpCounter}.tmp`;
    writeFileSync(tmp, seal(this.#key, plain), { mode: 0o600 });
    renameSync(tmp, path);
  }
}

function parse<T>(schema: z.ZodType<T>, plain: Uint8Array, what: string): T {
  try {
    return schema.parse(JSON.parse(new TextDecoder().decode(plain)));
  } catch (cause) {
    throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `sealed vault file ${what} unsealed but does not parse`, { cause });
  }
}

function decodeState(plain: Uint8Array): PersistentState {
  const s = parse(stateFileSchema, plain, "state.bin");
  return {
    place: s.place ? { cluster: BigInt(s.place.cluster), slot: s.place.slot } : null,
    checkpoint: s.checkpoint === null ? null : BigInt(s.checkpoint),
    bootstrapCursor: s.bootstrapCursor === null ? null : BigInt(s.bootstrapCursor),
    unconfirmed: new Map(s.unconfirmed.map(([t, v]) => [BigInt(t), BigInt(v)] as const)),
  };
}

export type { ShareSetDescriptorJson };
