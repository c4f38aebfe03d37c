/**
 * A block header's logs bloom (Ethereum Yellow Paper, "M3:2048"): a 2048-bit
 * filter into which every log of the block sets three bits for its address
 * and three for each of its topics, each bit taken from 11 bits of the value's
 * keccak-256. A value whose three bits are not all set is certainly absent
 * from the block's logs; one whose bits are set may be present (or may be a
 * false positive). Watchers use it to skip reading the logs of blocks that
 * cannot hold the events they follow.
 */
import { hexToBytes, type Address, type Hex } from "viem";
import { keccak256 } from "../crypto/keccak.ts";
import { CloisterError } from "../util/base-error.ts";

const BLOOM_BYTES = 256;

export class LogsBloomError extends CloisterError<"LOGS_BLOOM"> {
  constructor(message: string) {
    super("LOGS_BLOOM", message);
  }
}

/** The 256 bytes of a header's `logsBloom`. */
export function parseLogsBloom(bloom: Hex): Uint8Array {
  if (!/^0x[0-9a-fA-F]{512}$/.test(bloom)) throw new LogsBloomError(`a logs bloom is 256 bytes of 0x-hex, got ${bloom.length} characters`);
  return hexToBytes(bloom);
}

/** The three bit indexes a value sets; a watcher asks about the same few values (its market, its events) every block. */
const bitsOfValue = new Map<Hex, readonly number[]>();
const MAX_KEPT_VALUES = 256;

function bitsOf(value: Hex): readonly number[] {
  const key = value.toLowerCase() as Hex;
  let bits = bitsOfValue.get(key);
  if (bits === undefined) {
    const hash = keccak256(key, "bytes");
    bits = [0, 2, 4].map((i) => ((hash[i]! << 8) | hash[i + 1]!) & 0x7ff);
    if (bitsOfValue.size >= MAX_KEPT_VALUES) bitsOfValue.clear();
    bitsOfValue.set(key, bits);
  }
  return bits;
}

/** Whether all three bits `value` sets are set in `bloom`. */
function bloomHas(bloom: Uint8Array, value: Hex): boolean {
  return bitsOf(value).every((bit) => (bloom[BLOOM_BYTES - 1 - (bit >> 3)]! & (1 << (bit & 7))) !== 0);
}

/**
 * False when the block whose bloom this is certainly holds no log emitted by `address` whose first topic
 * (its event selector) is one of `selectors`; true when it may.
 */
export function bloomMayHoldEvents(bloom: Uint8Array, address: Address, selectors: readonly Hex[]): boolean {
  return bloomHas(bloom, address) && selectors.some((selector) => bloomHas(bloom, selector));
}
