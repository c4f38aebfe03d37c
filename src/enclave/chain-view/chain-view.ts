/**
 * What a job asks for: "the storage word at this slot of this contract, at a
 * block I can trust". The header comes from a HeaderSource (the quorum anchor,
 * quorum.ts), older headers by parent links from it; the proof comes from any
 * endpoint at all (the host's relay included), since it is checked against
 * the trusted stateRoot. So the data path may be the operator's; only the
 * anchor must not be.
 */
import type { Address, Hex } from "viem";
import { ChainViewError } from "./errors.ts";
import { parseHeader, verifyParentChain, type TrustedHeader } from "./header.ts";
import { parseProof, verifyAccountProof, verifyStorageProof, type ProvenAccount } from "./proof.ts";
import type { HeaderSource } from "./quorum.ts";
import { blockTagOf, call, type ChainEndpoint } from "./rpc.ts";
import { mappingSlot, nestedMappingSlot, slotKey, type MappingKey } from "./slots.ts";

/**
 * Which block: the checkpoint (default), a block number at or below it (reached
 * by parent links, at most `maxDepth` back), or a header this view returned
 * (so a job reads several words at one block).
 */
export type BlockTag = "checkpoint" | bigint | TrustedHeader;

/** A storage location: a slot, or the entry of a mapping (nested: one key per level) declared at `slot`. */
export type StorageLocation = { slot: bigint | Hex } | { mapping: { slot: bigint; keys: readonly MappingKey[] } };

export type ReadRequest = { address: Address; blockTag?: BlockTag } & StorageLocation;

export interface ProvenWord {
  /** The 32-byte storage word (zero for an unset slot or an absent account). */
  value: Hex;
  slot: Hex;
  /** The block the value is proved at. */
  block: TrustedHeader;
  account: ProvenAccount;
}

export interface ChainViewOptions {
  headers: HeaderSource;
  /** Where proofs and older headers come from: any endpoint, trusted or not (all it sends is verified). */
  data: ChainEndpoint;
  /** How far below the checkpoint a read may go by parent links (default 256). */
  maxDepth?: number;
  timeoutMs?: number;
}

export class ChainView {
  readonly #headers: HeaderSource;
  readonly #data: ChainEndpoint;
  readonly #maxDepth: bigint;
  readonly #timeoutMs: number;
  readonly #issued = new WeakSet<TrustedHeader>();

  constructor(options: ChainViewOptions) {
    this.#headers = options.headers;
    this.#data = options.data;
    this.#maxDepth = BigInt(options.maxDepth ?? 256);
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** A trusted header for `blockTag`. */
  async header(blockTag: BlockTag = "checkpoint"): Promise<TrustedHeader> {
    if (typeof blockTag === "object") {
      // Only a header this view proved: an object built from an endpoint's answer has the same shape.
      if (!this.#issued.has(blockTag)) throw new ChainViewError("HEADER_UNTRUSTED", "the header was not proved by this chain view; pass a header it returned, or a block number");
      return blockTag;
    }
    return this.#issue(await this.#prove(blockTag));
  }

  #issue(header: TrustedHeader): TrustedHeader {
    const frozen = Object.freeze({ ...header });
    this.#issued.add(frozen);
    return frozen;
  }

  async #prove(blockTag: "checkpoint" | bigint): Promise<TrustedHeader> {
    const checkpoint = await this.#headers.checkpoint();
    if (blockTag === "checkpoint" || blockTag === checkpoint.number) return checkpoint;
    if (blockTag > checkpoint.number) {
      throw new ChainViewError("BLOCK_NOT_FINAL", `block ${blockTag} is above the trusted checkpoint ${checkpoint.number}; wait for it to be final`, {
        details: { block: String(blockTag), checkpoint: String(checkpoint.number) },
      });
    }
    if (checkpoint.number - blockTag > this.#maxDepth) {
      throw new ChainViewError("BLOCK_TOO_OLD", `block ${blockTag} is more than ${this.#maxDepth} blocks below the checkpoint ${checkpoint.number}`, {
        details: { block: String(blockTag), checkpoint: String(checkpoint.number) },
      });
    }
    return this.#walkDown(checkpoint, blockTag);
  }

  /**
   * The header of block `number` below `from` (trusted), by parent links. The headers proved on the way are
   * kept (the last 512, by hash), so walks from one trusted header after another fetch each header once.
   */
  async #walkDown(from: TrustedHeader, number: bigint): Promise<TrustedHeader> {
    let child = from;
    while (child.number > number) {
      let parent = this.#walked.get(child.parentHash);
      if (!parent) {
        const raw = parseHeader(await call(this.#data, "eth_getBlockByNumber", [blockTagOf(child.number - 1n), false], this.#timeoutMs));
        parent = verifyParentChain(child, [raw])[0]!;
        this.#walked.set(parent.hash, parent);
        if (this.#walked.size > 512) this.#walked.delete(this.#walked.keys().next().value!);
      }
      child = parent;
    }
    return child;
  }

  /** Headers proved by parent links, by hash (#walkDown). */
  readonly #walked = new Map<Hex, TrustedHeader>();

  /** The header of block `number`, at most maxDepth below `anchor` (a header this view returned), proved by parent links from it. */
  async headerBelow(anchor: TrustedHeader, number: bigint): Promise<TrustedHeader> {
    const from = await this.header(anchor);
    if (number > from.number || from.number - number > this.#maxDepth) {
      throw new ChainViewError("BLOCK_TOO_OLD", `block ${number} is not within ${this.#maxDepth} blocks below block ${from.number}`, {
        details: { block: String(number), anchor: String(from.number) },
      });
    }
    return this.#issue(await this.#walkDown(from, number));
  }

  /** An account's nonce, balance, storage root and code hash, proved at a trusted block. */
  async account(address: Address, blockTag: BlockTag = "checkpoint"): Promise<{ account: ProvenAccount; block: TrustedHeader }> {
    const block = await this.header(blockTag);
    const proof = parseProof(await call(this.#data, "eth_getProof", [address, [], blockTagOf(block.number)], this.#timeoutMs));
    return { account: await verifyAccountProof(block.stateRoot, address, proof), block };
  }

  /** One storage word of a contract, proved at a trusted block. */
  async read(request: ReadRequest): Promise<ProvenWord> {
    const slot = slotOf(request);
    const block = await this.header(request.blockTag);
    const proof = parseProof(await call(this.#data, "eth_getProof", [request.address, [slot], blockTagOf(block.number)], this.#timeoutMs));
    const account = await verifyAccountProof(block.stateRoot, request.address, proof);
    if (proof.storageProof.length !== 1) throw new ChainViewError("PROOF_MALFORMED", `the endpoint sent ${proof.storageProof.length} storage proofs for one slot`);
    const value = await verifyStorageProof(account.storageRoot, slot, proof.storageProof[0]!);
    return { value, slot, block, account };
  }
}

function slotOf(request: StorageLocation): Hex {
  if ("slot" in request) return typeof request.slot === "bigint" ? slotKey(request.slot) : slotKey(BigInt(request.slot));
  const { slot, keys } = request.mapping;
  return keys.length === 1 ? mappingSlot(keys[0]!, slot) : nestedMappingSlot(keys, slot);
}
