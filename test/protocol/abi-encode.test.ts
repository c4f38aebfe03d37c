/** The vault commitments' ABI encoder: byte for byte what viem's general encoder gives for the same types and values. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { bytesToHex, encodeAbiParameters, type Address, type Hex } from "viem";
import { abiEncode, addressWord, bytes32Word, uintWord } from "../../src/protocol/abi-encode.ts";

const hex = (n: number): Hex => bytesToHex(randomBytes(n));
const uint = (bits: number): bigint => BigInt(hex(bits / 8));

test("static words and a bytes tail of every length around a word boundary match viem", () => {
  for (const length of [0, 1, 31, 32, 33, 63, 64, 65, 200]) {
    const [chainId, tokenId, version, slot] = [uint(256), uint(256), uint(64), randomInt(256)];
    const vault = hex(20) as Address;
    const salt = hex(32);
    const share = randomBytes(length);
    const ours = abiEncode([uintWord(chainId, 256), addressWord(vault), uintWord(tokenId, 256), uintWord(version, 64), uintWord(slot, 8), bytes32Word(salt), { bytes: share }]);
    const viems = encodeAbiParameters(
      [{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "uint64" }, { type: "uint8" }, { type: "bytes32" }, { type: "bytes" }],
      [chainId, vault, tokenId, version, slot, salt, bytesToHex(share)],
    );
    assert.equal(bytesToHex(ours), viems, `bytes of length ${length}`);
  }
});

test("a bytes32[] tail of 0 to 255 words matches viem", () => {
  for (const count of [0, 1, 5, 255]) {
    const words = Array.from({ length: count }, () => hex(32));
    const commitment = hex(32);
    const ours = abiEncode([uintWord(7n, 256), uintWord(3, 8), bytes32Word(commitment), { words: words.map((w) => bytes32Word(w).word) }]);
    const viems = encodeAbiParameters([{ type: "uint256" }, { type: "uint8" }, { type: "bytes32" }, { type: "bytes32[]" }], [7n, 3, commitment, words]);
    assert.equal(bytesToHex(ours), viems, `${count} words`);
  }
});

test("values that do not fit their type are refused, not truncated", () => {
  assert.throws(() => uintWord(256, 8), RangeError);
  assert.throws(() => uintWord(1n << 64n, 64), RangeError);
  assert.throws(() => uintWord(-1n, 256), RangeError);
  assert.throws(() => addressWord("0x1234" as Address), /not an address/);
  assert.throws(() => addressWord(`0x${"zz".repeat(20)}` as Address), /not an address/);
  assert.throws(() => bytes32Word(hex(31)), /not a bytes32/);
  assert.throws(() => abiEncode([{ word: new Uint8Array(31) }]), /32 bytes/);
  assert.throws(() => abiEncode([{ words: [new Uint8Array(33)] }]), /32 bytes/);
});
