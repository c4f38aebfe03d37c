/**
 * The vault enclave's persistent state, every byte of it sealed
 * (src/enclave/sealing.ts, AES-256-GCM under a key derived from the sealing
 * root and the vault image's measurement):
 *
 * - `vault/shares/<token id, hex>.bin`: one share (slot, salt, share bytes)
 *   with its public descriptor and root; the token id and version inside are
 *   checked on read, so a file renamed onto another token does not load;
 * - `vault/state.bin`: the state machine's persistent part (place, sync
 *   checkpoint, bootstrap cursor, shares not yet confirmed);
 * - `vault/nonces.bin`: retrieval nonces served and not yet expired.
 *
 * Writes go to a temporary file renamed into place, so a crash leaves the old
 * or the new version, never half of one.
 */
import { hkdfSync } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
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
const stateFileSchema = z.strictObject({
  place: z.strictObject({ cluster: dec, slot: z.number().int() }).nullable(),
  checkpoint: dec.nullable(),
  bootstrapCursor: dec.nullable(),
  unconfirmed: z.array(z.tuple([dec, dec])),
});
const noncesFileSchema = z.array(z.tuple([z.string(), dec]));

export class SealedVaultStore {
  readonly #key: Uint8Array;
  readonly #dir: string;
  readonly #shares = new Map<bigint, HeldShare>();
  readonly #writes = new Map<string, Promise<void>>();
  #tmpCounter = 0;

  private constructor(key: Uint8Array, dir: string) {
    this.#key = key;
    this.#dir = dir;
  }

  /** Opens (creating) `<dataDir>/vault` and loads every sealed share; `fresh` when no state was ever written. */
  static async open(dataDir: string, sealingKey: Uint8Array): Promise<{ store: SealedVaultStore; state: PersistentState; fresh: boolean; nonces: Map<string, bigint> }> {
    const key = new Uint8Array(hkdfSync("sha256", sealingKey, new Uint8Array(0), VAULT_SEALING_INFO, 32));
    const dir = join(dataDir, "vault");
    await mkdir(join(dir, "shares"), { recursive: true });
    const store = new SealedVaultStore(key, dir);
    for (const name of await readdir(join(dir, "shares"))) {
      if (!name.endsWith(".bin")) continue;
      const held = store.#decodeShare(await store.#read(join(dir, "shares", name)), name);
      if (`${held.tokenId.toString(16)}.bin` !== name) throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `sealed share ${name} holds token ${held.tokenId}: the file was moved`);
      store.#shares.set(held.tokenId, held);
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
    await this.#write(join(this.#dir, "pending", `${held.tokenId.toString(16)}.bin`), this.#encode(held));
  }

  async takePending(tokenId: bigint): Promise<HeldShare | undefined> {
    const path = join(this.#dir, "pending", `${tokenId.toString(16)}.bin`);
    const plain = await this.#readOptional(path);
    if (!plain) return undefined;
    const held = this.#decodeShare(plain, `pending/${tokenId.toString(16)}.bin`);
    if (held.tokenId !== tokenId) throw new VaultEnclaveError("SEALED_STATE_MALFORMED", `pending share file for token ${tokenId} holds another token`);
    return held;
  }

  async removePending(tokenId: bigint): Promise<void> {
    await rm(join(this.#dir, "pending", `${tokenId.toString(16)}.bin`), { force: true });
  }

  #encode(held: HeldShare): Uint8Array {
    return new TextEncoder().encode(
      JSON.stringify({
        tokenId: held.tokenId.toString(),
        version: held.version.toString(),
        slot: held.share.slot,
        salt: toHex(held.share.salt),
        share: toHex(held.share.share),
        descriptor: shareSetDescriptorJson(held.descriptor),
        root: held.root.toLowerCase(),
      }),
    );
  }

  async put(held: HeldShare): Promise<void> {
    const plain = this.#encode(held);
    await this.#write(join(this.#dir, "shares", `${held.tokenId.toString(16)}.bin`), plain);
    plain.fill(0);
    this.#shares.set(held.tokenId, held);
  }

  async remove(tokenId: bigint): Promise<void> {
    await rm(join(this.#dir, "shares", `${tokenId.toString(16)}.bin`), { force: true });
    this.#shares.delete(tokenId);
  }

  async saveState(state: PersistentState): Promise<void> {
    const json = {
      place: state.place ? { cluster: state.place.cluster.toString(), slot: state.place.slot } : null,
      checkpoint: state.checkpoint === null ? null : state.checkpoint.toString(),
      bootstrapCursor: state.bootstrapCursor === null ? null : state.bootstrapCursor.toString(),
      unconfirmed: [...state.unconfirmed].map(([t, v]) => [t.toString(), v.toString()]),
    };
    await this.#write(join(this.#dir, "state.bin"), new TextEncoder().encode(JSON.stringify(json)));
  }

  async saveNonces(nonces: Map<string, bigint>): Promise<void> {
    await this.#write(join(this.#dir, "nonces.bin"), new TextEncoder().encode(JSON.stringify([...nonces].map(([k, b]) => [k, b.toString()]))));
  }

  #decodeShare(plain: Uint8Array, name: string): HeldShare {
    const f = parse(shareFileSchema, plain, name);
    const descriptor = parseShareSetDescriptor(f.descriptor);
    return {
      tokenId: BigInt(f.tokenId),
      version: BigInt(f.version),
      share: { slot: f.slot, salt: fromHex(f.salt as `0x${string}`), share: fromHex(f.share as `0x${string}`) },
      descriptor,
      root: f.root as `0x${string}`,
    };
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

  /** Writes to one path are queued, so the last call's content is what stays; each uses its own temporary file. */
  #write(path: string, plain: Uint8Array): Promise<void> {
    const sealed = seal(this.#key, plain);
    const previous = this.#writes.get(path) ?? Promise.resolve();
    const next = previous.then(async () => {
      const tmp = `${path}.${++this.#tmpCounter}.tmp`;
      await writeFile(tmp, sealed, { mode: 0o600 });
      await rename(tmp, path);
    });
    const settled = next.catch(() => {});
    this.#writes.set(path, settled);
    void settled.then(() => {
      if (this.#writes.get(path) === settled) this.#writes.delete(path);
    });
    return next;
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
