/**
 * Solidity ABI encoding (abi.encode) of the few shapes the vault's
 * commitments hash: static words, then `bytes` and `bytes32[]` tails. The
 * output is byte for byte viem's encodeAbiParameters for the same types
 * (test/protocol/abi-encode.test.ts checks it on random values); it exists
 * because a storing enclave hashes two or three of these per share, and
 * viem's general encoder (hex strings, regexes, a cursor) was 6% of a vault
 * enclave's CPU in the sync benchmark.
 */
import type { Address, Hex } from "viem";
import { fromHex } from "../crypto/bytes.ts";

/** One ABI argument: a static 32-byte word, or a dynamic `bytes` / `bytes32[]` value. */
export type AbiArg = { word: Uint8Array } | { bytes: Uint8Array } | { words: readonly Uint8Array[] };

const WORD = 32;

/** A uintN word; throws RangeError when `value` does not fit in `bits` bits. */
export function uintWord(value: bigint | number, bits: number): { word: Uint8Array } {
  const v = BigInt(value);
  if (v < 0n || v >> BigInt(bits) !== 0n) throw new RangeError(`${v} is not a uint${bits}`);
  return { word: fromHex(v.toString(16).padStart(2 * WORD, "0")) };
}

export function addressWord(address: Address): { word: Uint8Array } {
  const bytes = hexBytes(address, 20, "an address");
  const word = new Uint8Array(WORD);
  word.set(bytes, WORD - 20);
  return { word };
}

export function bytes32Word(value: Hex): { word: Uint8Array } {
  return { word: hexBytes(value, WORD, "a bytes32") };
}

/** abi.encode(args…): the heads (a word, or the offset of a dynamic value's tail), then the tails in order. */
export function abiEncode(args: readonly AbiArg[]): Uint8Array {
  const tails = args.map(tailOf);
  const size = args.length * WORD + tails.reduce((n, t) => n + (t?.length ?? 0), 0);
  const out = new Uint8Array(size);
  let tailAt = args.length * WORD;
  args.forEach((arg, i) => {
    const tail = tails[i];
    if (tail === undefined) {
      out.set((arg as { word: Uint8Array }).word, i * WORD);
      return;
    }
    out.set(uintWord(tailAt, 256).word, i * WORD);
    out.set(tail, tailAt);
    tailAt += tail.length;
  });
  return out;
}

function tailOf(arg: AbiArg): Uint8Array | undefined {
  if ("word" in arg) {
    if (arg.word.length !== WORD) throw new RangeError(`an ABI word is ${WORD} bytes, not ${arg.word.length}`);
    return undefined;
  }
  if ("bytes" in arg) {
    const padded = Math.ceil(arg.bytes.length / WORD) * WORD;
    const tail = new Uint8Array(WORD + padded);
    tail.set(uintWord(arg.bytes.length, 256).word, 0);
    tail.set(arg.bytes, WORD);
    return tail;
  }
  const tail = new Uint8Array(WORD * (1 + arg.words.length));
  tail.set(uintWord(arg.words.length, 256).word, 0);
  arg.words.forEach((w, i) => {
    if (w.length !== WORD) throw new RangeError(`a bytes32 is ${WORD} bytes, not ${w.length}`);
    tail.set(w, WORD * (1 + i));
  });
  return tail;
}

function hexBytes(value: string, size: number, what: string): Uint8Array {
  if (value.startsWith("0x") && value.length === 2 + 2 * size) {
    try {
      return fromHex(value);
    } catch {
      // Not hex: refused below, with what was expected.
    }
  }
  throw new RangeError(`${value} is not ${what} (0x and ${2 * size} hex digits)`);
}
