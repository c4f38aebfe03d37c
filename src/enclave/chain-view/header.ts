/**
 * Block headers the enclave checks itself: a JSON-RPC block's header fields
 * are re-encoded (RLP, in the consensus order) and hashed; the header is only
 * used when keccak256(RLP(header)) equals the hash the enclave already trusts,
 * either a quorum's (quorum.ts) or the parentHash of a header it has already
 * checked. So an endpoint can withhold a header but not alter one field of it.
 */
import { toRlp, type Hex } from "viem";
import { z } from "zod";
import { keccak256 } from "../../crypto/keccak.ts";
import { ChainViewError } from "./errors.ts";

const hash32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/);
const bytes = z.string().regex(/^0x([0-9a-fA-F]{2})*$/);
const quantity = z.string().regex(/^0x[0-9a-fA-F]+$/);

/** The header fields of an eth_getBlockByNumber / eth_getBlockByHash answer (others are ignored). */
export const rpcBlockSchema = z.object({
  hash: hash32,
  parentHash: hash32,
  sha3Uncles: hash32,
  miner: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  stateRoot: hash32,
  transactionsRoot: hash32,
  receiptsRoot: hash32,
  logsBloom: z.string().regex(/^0x[0-9a-fA-F]{512}$/),
  difficulty: quantity,
  number: quantity,
  gasLimit: quantity,
  gasUsed: quantity,
  timestamp: quantity,
  extraData: bytes,
  mixHash: hash32,
  nonce: z.string().regex(/^0x[0-9a-fA-F]{16}$/),
  // London, Shanghai, Cancun, Prague: present from their fork on, each only after the ones before it.
  baseFeePerGas: quantity.optional(),
  withdrawalsRoot: hash32.optional(),
  blobGasUsed: quantity.optional(),
  excessBlobGas: quantity.optional(),
  parentBeaconBlockRoot: hash32.optional(),
  requestsHash: hash32.optional(),
});
export type RpcBlock = z.infer<typeof rpcBlockSchema>;

/** A header whose hash the enclave has checked against a hash it trusts. */
export interface TrustedHeader {
  number: bigint;
  hash: Hex;
  parentHash: Hex;
  stateRoot: Hex;
  /** Seconds since the epoch: the clock the enclave may trust (its own clock is the host's). */
  timestamp: bigint;
}

type Kind = "hash" | "quantity";
const fixedFields: readonly (readonly [keyof RpcBlock, Kind])[] = [
  ["parentHash", "hash"],
  ["sha3Uncles", "hash"],
  ["miner", "hash"],
  ["stateRoot", "hash"],
  ["transactionsRoot", "hash"],
  ["receiptsRoot", "hash"],
  ["logsBloom", "hash"],
  ["difficulty", "quantity"],
  ["number", "quantity"],
  ["gasLimit", "quantity"],
  ["gasUsed", "quantity"],
  ["timestamp", "quantity"],
  ["extraData", "hash"],
  ["mixHash", "hash"],
  ["nonce", "hash"],
];
const forkFields: readonly (readonly [keyof RpcBlock, Kind])[] = [
  ["baseFeePerGas", "quantity"],
  ["withdrawalsRoot", "hash"],
  ["blobGasUsed", "quantity"],
  ["excessBlobGas", "quantity"],
  ["parentBeaconBlockRoot", "hash"],
  ["requestsHash", "hash"],
];

/** An RLP integer: big-endian without leading zero bytes (zero is the empty string). */
function rlpQuantity(value: string): Hex {
  const digits = value.slice(2).replace(/^0+/, "");
  if (digits === "") return "0x";
  return `0x${digits.length % 2 ? "0" : ""}${digits}`;
}

/** Parses an RPC block's header fields (their hash is checked by verifyHeader). */
export function parseHeader(raw: unknown): RpcBlock {
  const parsed = rpcBlockSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ChainViewError("HEADER_MALFORMED", "the endpoint's block is not a well-formed header; check the endpoint", { cause: parsed.error });
  }
  return parsed.data;
}

/** keccak256(RLP(header)) of an RPC block's header fields. */
export function headerHash(block: RpcBlock): Hex {
  const items: Hex[] = [];
  for (const [name, kind] of fixedFields) items.push(field(block, name, kind));
  let ended = false;
  for (const [name, kind] of forkFields) {
    if (block[name] === undefined) {
      ended = true;
      continue;
    }
    // A later fork's field without an earlier one is no header of any fork.
    if (ended) throw new ChainViewError("HEADER_MALFORMED", `the block has ${name} but not the fields of the forks before it`);
    items.push(field(block, name, kind));
  }
  return keccak256(toRlp(items));
}

function field(block: RpcBlock, name: keyof RpcBlock, kind: Kind): Hex {
  const value = block[name] as string;
  return kind === "quantity" ? rlpQuantity(value) : (value.toLowerCase() as Hex);
}

/** Checks that `block` is the header of `expectedHash` and returns what the enclave may use of it. */
export function verifyHeader(block: RpcBlock, expectedHash: Hex): TrustedHeader {
  const computed = headerHash(block);
  if (computed !== expectedHash.toLowerCase() || block.hash.toLowerCase() !== computed) {
    throw new ChainViewError("HEADER_HASH_MISMATCH", "the block's header does not hash to the trusted block hash; the endpoint altered it", {
      details: { expected: expectedHash, computed, claimed: block.hash, number: block.number },
    });
  }
  return trusted(block, computed);
}

/** A header whose fields hash to its own `hash` field: self-consistent, not yet trusted (quorum.ts votes on it). */
export function selfConsistentHeader(block: RpcBlock): TrustedHeader {
  return verifyHeader(block, block.hash as Hex);
}

/**
 * Walks parent links down from a trusted header: `older` must be the headers
 * just below `from`, newest first. Returns them all as trusted, newest first.
 */
export function verifyParentChain(from: TrustedHeader, older: readonly RpcBlock[]): TrustedHeader[] {
  const out: TrustedHeader[] = [];
  let child = from;
  for (const block of older) {
    if (BigInt(block.number) !== child.number - 1n) {
      throw new ChainViewError("HEADER_CHAIN_BROKEN", `expected the header of block ${child.number - 1n}, got block ${BigInt(block.number)}`, {
        details: { expected: String(child.number - 1n), got: block.number },
      });
    }
    let parent: TrustedHeader;
    try {
      parent = verifyHeader(block, child.parentHash);
    } catch (error) {
      throw new ChainViewError("HEADER_CHAIN_BROKEN", `the header of block ${child.number - 1n} is not the parent of block ${child.number}`, {
        cause: error,
        details: { number: String(child.number - 1n), parentHash: child.parentHash },
      });
    }
    out.push(parent);
    child = parent;
  }
  return out;
}

function trusted(block: RpcBlock, hash: Hex): TrustedHeader {
  return {
    number: BigInt(block.number),
    hash,
    parentHash: block.parentHash.toLowerCase() as Hex,
    stateRoot: block.stateRoot.toLowerCase() as Hex,
    timestamp: BigInt(block.timestamp),
  };
}
