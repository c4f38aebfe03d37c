/**
 * What the vault enclave knows of the chain, proved rather than believed:
 * every read is a storage word of SecretVault or EnclaveRegistry proved with
 * eth_getProof against a header the enclave's own quorum of endpoints agrees
 * on (src/enclave/chain-view/). The host may serve the proofs; it cannot
 * change what they prove.
 *
 * Endpoints: in this simulated runtime the enclave calls the JSON-RPC URLs
 * of its configuration over node:http (http-endpoints.ts; the devnet's are plain HTTP on loopback).
 * On hardware they are HTTPS endpoints reached through the host relay with
 * TLS terminating inside the enclave (src/enclave/net/): not wired yet.
 */
import { hexToBigInt, type Address, type Hex } from "viem";
import { ChainView } from "../chain-view/chain-view.ts";
import type { TrustedHeader } from "../chain-view/header.ts";
import { httpEndpoint } from "../chain-view/http-endpoints.ts";
import { QuorumHeaderSource } from "../chain-view/quorum.ts";
import { MAX_STORAGE_PROOFS, parseProof, verifyAccountProof, verifyStorageProofs } from "../chain-view/proof.ts";
import { blockTagOf, call, type ChainEndpoint } from "../chain-view/rpc.ts";
import { addressFromWord, mappingSlot, nestedMappingSlot, slotPlus } from "../chain-view/slots.ts";
import { vaultStorageSlots } from "../../protocol/vault-contract.ts";
import { VaultEnclaveError } from "./errors.ts";

/** EnclaveRegistry's `enclaves` mapping (after AccessControl's `_roles` at 0); test/enclave/vault pins it. */
export const REGISTRY_ENCLAVES_SLOT = 1n;
/** SecretVault's `_clusters` (cluster → { uint8 size, uint32 epoch }) and `membershipOf` mappings. */
export const VAULT_CLUSTERS_SLOT = 10n;
export const VAULT_MEMBERSHIP_SLOT = 12n;

export interface ChainConfig {
  chainId: number;
  vault: Address;
  registry: Address;
  /** JSON-RPC endpoints (http or https URLs) named in the enclave's configuration. */
  endpoints: readonly { name: string; url: string }[];
  /** How many endpoints must agree on the checkpoint block (a majority). */
  quorum: number;
  /** How many blocks below the quorum's head the checkpoint is. */
  finalityDepth: number;
}

/** An EIP-1193 request function over HTTP JSON-RPC. */
export interface SecretWord {
  threshold: number;
  shares: number;
  version: bigint;
  burned: boolean;
  sharesRoot: Hex;
}

export interface RegistryEntry {
  operator: Address;
  expiry: bigint;
  revoked: boolean;
  hpkePublicKey: Hex;
  measurement: Hex;
}


function byteAt(word: bigint, offset: number, bytes: number): bigint {
  return (word >> BigInt(offset * 8)) & ((1n << BigInt(bytes * 8)) - 1n);
}

function decodeSecret(w0: bigint, w1: bigint): SecretWord {
  return {
    threshold: Number(byteAt(w0, 0, 1)),
    shares: Number(byteAt(w0, 1, 1)),
    version: byteAt(w0, 2, 8),
    burned: byteAt(w0, 10, 1) !== 0n,
    sharesRoot: `0x${w1.toString(16).padStart(64, "0")}`,
  };
}

/** Proved reads of the vault's and the registry's state, at one trusted block per call site. */
export class VaultChain {
  readonly view: ChainView;
  readonly config: ChainConfig;
  readonly #data: ChainEndpoint;

  constructor(config: ChainConfig, endpoints?: readonly ChainEndpoint[]) {
    const eps = endpoints ?? config.endpoints.map((e) => httpEndpoint(e.name, e.url));
    this.config = config;
    this.#data = eps[0]!;
    this.view = new ChainView({
      headers: new QuorumHeaderSource({ chainId: config.chainId, endpoints: eps, quorum: config.quorum, finalityDepth: config.finalityDepth }),
      data: eps[0]!,
    });
  }

  /** A trusted header: the checkpoint of the quorum. */
  async block(): Promise<TrustedHeader> {
    try {
      return await this.view.header();
    } catch (cause) {
      throw new VaultEnclaveError("CHAIN_UNAVAILABLE", `the vault enclave could not establish a trusted block from its endpoints (${(cause as Error).message}); check them`, { cause });
    }
  }

  /** The header of block `number`, below `anchor` (a trusted block), proved by parent links from it. */
  async blockAt(anchor: TrustedHeader, number: bigint): Promise<TrustedHeader> {
    try {
      return await this.view.headerBelow(anchor, number);
    } catch (cause) {
      throw new VaultEnclaveError("CHAIN_UNAVAILABLE", `the vault enclave could not prove the header of block ${number} from its checkpoint (${(cause as Error).message}); check its endpoints`, { cause });
    }
  }

  async #word(address: Address, slot: Hex, block: TrustedHeader): Promise<bigint> {
    try {
      return hexToBigInt((await this.view.read({ address, slot, blockTag: block })).value);
    } catch (cause) {
      throw new VaultEnclaveError("CHAIN_UNAVAILABLE", "a storage proof could not be verified; the endpoint is wrong or lying", { cause });
    }
  }

  /** Several storage words of one contract, proved at `block`: one eth_getProof per MAX_STORAGE_PROOFS slots. */
  async words(address: Address, slots: readonly Hex[], block: TrustedHeader): Promise<bigint[]> {
    const words: bigint[] = [];
    for (let i = 0; i < slots.length; i += MAX_STORAGE_PROOFS) words.push(...(await this.#proveWords(address, slots.slice(i, i + MAX_STORAGE_PROOFS), block)));
    return words;
  }

  async #proveWords(address: Address, slots: readonly Hex[], block: TrustedHeader): Promise<bigint[]> {
    try {
      const proof = parseProof(await call(this.#data, "eth_getProof", [address, slots, blockTagOf(block.number)], 30_000));
      const account = await verifyAccountProof(block.stateRoot, address, proof);
      // Matched by key, not by position: an endpoint may order (or merge) them as it likes.
      const byKey = new Map(proof.storageProof.map((e) => [hexToBigInt(e.key as Hex), e] as const));
      const items = slots.map((slot) => {
        const entry = byKey.get(hexToBigInt(slot));
        if (!entry) throw new VaultEnclaveError("CHAIN_UNAVAILABLE", `the endpoint sent no storage proof for slot ${slot}`);
        return { slot, entry };
      });
      // One pool of trie nodes for the whole answer: a node shared by many slots' paths is hashed once.
      return (await verifyStorageProofs(account.storageRoot, items)).map((w) => hexToBigInt(w));
    } catch (cause) {
      if (cause instanceof VaultEnclaveError) throw cause;
      if (process.env.CLOISTER_VAULT_DEBUG === "1") console.error("vault enclave proofs:", cause);
      throw new VaultEnclaveError("CHAIN_UNAVAILABLE", "storage proofs could not be verified; the endpoint is wrong or lying", { cause });
    }
  }

  /** The storage slots of tokens' records (two words each), for words(). */
  secretSlots(tokenIds: readonly bigint[]): Hex[] {
    return tokenIds.flatMap((tokenId) => {
      const base = mappingSlot({ type: "uint256", value: tokenId }, vaultStorageSlots.secrets);
      return [base, slotPlus(base, 1n)];
    });
  }

  /** Records from the words of secretSlots, in the same order. */
  decodeSecrets(words: readonly bigint[]): SecretWord[] {
    return Array.from({ length: words.length / 2 }, (_, i) => decodeSecret(words[2 * i]!, words[2 * i + 1]!));
  }

  /** SecretVault's records of many tokens, proved together. */
  async secrets(tokenIds: readonly bigint[], block: TrustedHeader): Promise<SecretWord[]> {
    return this.decodeSecrets(await this.words(this.config.vault, this.secretSlots(tokenIds), block));
  }

  /** SecretVault's record of a token (threshold 0: never stored). */
  async secret(tokenId: bigint, block: TrustedHeader): Promise<SecretWord> {
    return (await this.secrets([tokenId], block))[0]!;
  }

  /** SecretVault's record of a token and its ERC-721 owner (the zero address when burned or unminted), proved together. */
  async secretAndOwner(tokenId: bigint, block: TrustedHeader): Promise<{ record: SecretWord; owner: Address }> {
    const base = mappingSlot({ type: "uint256", value: tokenId }, vaultStorageSlots.secrets);
    const ownerSlot = mappingSlot({ type: "uint256", value: tokenId }, vaultStorageSlots.owners);
    const [w0, w1, owner] = (await this.words(this.config.vault, [base, slotPlus(base, 1n), ownerSlot], block)) as [bigint, bigint, bigint];
    return { record: decodeSecret(w0, w1), owner: addressFromWord(`0x${owner.toString(16).padStart(64, "0")}`) };
  }

  #memberAtSlot(cluster: bigint, slot: number): Hex {
    return nestedMappingSlot([{ type: "uint256", value: cluster }, { type: "uint256", value: BigInt(slot) }], vaultStorageSlots.memberAt);
  }

  /**
   * Where each enclave sits now: it must be the member at its recorded slot (a replaced enclave is not). With
   * `epochOf`, the epoch of that enclave's cluster too. One eth_getProof when every enclave sits where it was last proved to
   * sit (its memberAt word and its cluster's epoch are asked with its membership word), a second one otherwise:
   * a node's cost per call grows with the vault's storage (measured on EDR: about 100 ms per call at 10,000
   * tokens), hardly with the slots asked. The guess only chooses which slots to ask; every answer is a word
   * proved at `block`.
   */
  async placesOf(
    enclaves: readonly Address[],
    block: TrustedHeader,
    epochOf?: Address,
  ): Promise<{ places: ({ cluster: bigint; slot: number } | undefined)[]; epoch?: number }> {
    const asked = enclaves.findIndex((e) => epochOf !== undefined && e.toLowerCase() === epochOf.toLowerCase());
    const membershipSlots = enclaves.map((e) => mappingSlot({ type: "address", value: e }, VAULT_MEMBERSHIP_SLOT));
    const guessed = this.#placeSlots(enclaves.map((e) => this.#lastMembership.get(e.toLowerCase())), asked);
    const first = await this.words(this.config.vault, [...membershipSlots, ...guessed], block);
    const proved = new Map<string, bigint>([...membershipSlots, ...guessed].map((slot, i) => [slot.toLowerCase(), first[i]!] as const));
    const memberships = enclaves.map((_, i) => {
      const w = first[i]!;
      return { cluster: byteAt(w, 0, 8), slot: Number(byteAt(w, 8, 1)), used: byteAt(w, 9, 1) !== 0n };
    });
    const needed = this.#placeSlots(memberships, asked);
    const missing = needed.filter((slot) => !proved.has(slot.toLowerCase()));
    if (missing.length) (await this.words(this.config.vault, missing, block)).forEach((w, i) => proved.set(missing[i]!.toLowerCase(), w));
    const places = enclaves.map((e, i): { cluster: bigint; slot: number } | undefined => {
      const m = memberships[i]!;
      if (!m.used) return undefined;
      this.#lastMembership.set(e.toLowerCase(), m);
      const member = addressFromWord(`0x${proved.get(this.#memberAtSlot(m.cluster, m.slot).toLowerCase())!.toString(16).padStart(64, "0")}`);
      return member.toLowerCase() === e.toLowerCase() ? { cluster: m.cluster, slot: m.slot } : undefined;
    });
    const epochWord = asked >= 0 && memberships[asked]!.used ? proved.get(this.#clusterSlot(memberships[asked]!.cluster).toLowerCase()) : undefined;
    return { places, ...(epochWord !== undefined ? { epoch: Number(byteAt(epochWord, 1, 4)) } : {}) };
  }

  /** Membership words last proved, per enclave (public data, only to choose which slots to ask next time). */
  readonly #lastMembership = new Map<string, { cluster: bigint; slot: number; used: boolean }>();

  /** The memberAt slot of each used membership, and the cluster slot (epoch) of the one at `epochIndex`. */
  #placeSlots(memberships: readonly ({ cluster: bigint; slot: number; used: boolean } | undefined)[], epochIndex: number): Hex[] {
    const slots = memberships.flatMap((m) => (m?.used ? [this.#memberAtSlot(m.cluster, m.slot)] : []));
    const forEpoch = epochIndex >= 0 ? memberships[epochIndex] : undefined;
    return forEpoch?.used ? [...slots, this.#clusterSlot(forEpoch.cluster)] : slots;
  }

  #clusterSlot(cluster: bigint): Hex {
    return mappingSlot({ type: "uint256", value: cluster }, VAULT_CLUSTERS_SLOT);
  }

  async memberAt(cluster: bigint, slot: number, block: TrustedHeader): Promise<Address> {
    const w = await this.#word(this.config.vault, this.#memberAtSlot(cluster, slot), block);
    return addressFromWord(`0x${w.toString(16).padStart(64, "0")}`);
  }

  /** An enclave's registry entry, its measurement (word 2) included, proved with one eth_getProof. */
  async registryEntry(enclave: Address, block: TrustedHeader): Promise<RegistryEntry> {
    const base = mappingSlot({ type: "address", value: enclave }, REGISTRY_ENCLAVES_SLOT);
    const [w0, w1, w2] = (await this.words(this.config.registry, [base, slotPlus(base, 1n), slotPlus(base, 2n)], block)) as [bigint, bigint, bigint];
    return {
      operator: addressFromWord(`0x${w0.toString(16).padStart(64, "0")}`),
      expiry: byteAt(w0, 20, 8),
      revoked: byteAt(w0, 30, 1) !== 0n,
      hpkePublicKey: `0x${w1.toString(16).padStart(64, "0")}`,
      measurement: `0x${w2.toString(16).padStart(64, "0")}`,
    };
  }

  /** The enclave's current place (see placesOf). */
  async placeOf(enclave: Address, block: TrustedHeader): Promise<{ cluster: bigint; slot: number } | undefined> {
    return (await this.placesOf([enclave], block)).places[0];
  }
}
