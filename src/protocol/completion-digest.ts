/**
 * The EIP-712 digest of a Completion (src/protocol/completion.ts), which the
 * enclave signs for completeTask and the SDK checks the signature against:
 * keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(completion)).
 *
 * Same bytes as viem's hashTypedData, for a fraction of its CPU time: the
 * domain separator (per chain and market, computed by viem) and the type hash
 * are made once, and the struct is seven 32-byte words after the type hash
 * (the two CID strings enter as the keccak256 of their UTF-8 bytes), so it is
 * encoded directly instead of through viem's generic validation and ABI
 * encoder.
 */
import { keccak256 } from "../crypto/keccak.ts";
import { domainSeparator, type Address, type Hex } from "viem";
import { completionDomain, completionTypes, type Completion } from "./completion.ts";

const WORD = 32;
const UINT256_LIMIT = 1n << 256n;

const utf8 = new TextEncoder();

/** keccak256 of the encoded type "Completion(uint256 taskId,bytes32 programDigest,...)"; the struct has no nested types. */
const TYPE_HASH = keccak256(
  utf8.encode(`Completion(${completionTypes.Completion.map((field) => `${field.type} ${field.name}`).join(",")})`),
  "bytes",
);

/** Domain separators by chain and market; a node serves one market, so this stays tiny. */
const domainSeparators = new Map<string, Buffer>();
const MAX_DOMAINS = 16;

function domainSeparatorOf(chainId: bigint, market: Address): Buffer {
  const key = `${chainId}:${market.toLowerCase()}`;
  let separator = domainSeparators.get(key);
  if (!separator) {
    if (domainSeparators.size >= MAX_DOMAINS) domainSeparators.clear();
    separator = Buffer.from(domainSeparator({ domain: completionDomain(chainId, market) }).slice(2), "hex");
    domainSeparators.set(key, separator);
  }
  return separator;
}

function writeBytes32(out: Buffer, at: number, value: Hex, name: string): void {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new RangeError(`completion ${name} must be 32 bytes of hex, got ${value}`);
  out.write(value.slice(2), at, WORD, "hex");
}

/** The digest an enclave signs for `completion` on the market at `market` of chain `chainId`. */
export function completionDigest(chainId: bigint, market: Address, completion: Completion): Hex {
  const { taskId } = completion;
  if (taskId < 0n || taskId >= UINT256_LIMIT) throw new RangeError(`completion taskId ${taskId} is not a uint256`);
  const struct = Buffer.alloc(8 * WORD);
  struct.set(TYPE_HASH, 0);
  struct.write(taskId.toString(16).padStart(2 * WORD, "0"), WORD, WORD, "hex");
  writeBytes32(struct, 2 * WORD, completion.programDigest, "programDigest");
  writeBytes32(struct, 3 * WORD, completion.inputDigest, "inputDigest");
  writeBytes32(struct, 4 * WORD, completion.outputDigest, "outputDigest");
  writeBytes32(struct, 5 * WORD, completion.provenanceDigest, "provenanceDigest");
  struct.set(keccak256(utf8.encode(completion.outputCid), "bytes"), 6 * WORD);
  struct.set(keccak256(utf8.encode(completion.provenanceCid), "bytes"), 7 * WORD);
  const message = Buffer.alloc(2 + 2 * WORD);
  message[0] = 0x19;
  message[1] = 0x01;
  message.set(domainSeparatorOf(chainId, market), 2);
  message.set(keccak256(struct, "bytes"), 2 + WORD);
  return keccak256(message);
}
