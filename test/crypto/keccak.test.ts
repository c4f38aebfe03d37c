import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { bytesToHex, hexToBytes, keccak256 as viemKeccak256, stringToBytes, type Hex } from "viem";
import { CryptoError } from "../../src/crypto/errors.ts";
import { keccak256 } from "../../src/crypto/keccak.ts";

const emptyHash = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
const abcHash = "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45";

test("known vectors: the empty input and \"abc\"", () => {
  assert.equal(keccak256(new Uint8Array()), emptyHash);
  assert.equal(keccak256("0x"), emptyHash);
  assert.equal(keccak256(stringToBytes("abc")), abcHash);
  assert.equal(keccak256("0x616263"), abcHash);
  assert.deepEqual(keccak256("0x616263", "bytes"), hexToBytes(abcHash));
});

test("equals viem's keccak256 for random inputs of 0 to 20000 bytes, as hex and as bytes, in both output forms", () => {
  const sizes = [0, 1, 31, 32, 33, 64, 135, 136, 137, 271, 272, 16383, 16384, 16385, 20000, ...Array.from({ length: 60 }, () => randomInt(0, 20001))];
  for (const size of sizes) {
    const bytes = new Uint8Array(randomBytes(size));
    const hex = bytesToHex(bytes);
    const expected = viemKeccak256(bytes);
    assert.equal(keccak256(bytes), expected, `bytes of ${size}`);
    assert.equal(keccak256(hex), expected, `hex of ${size}`);
    assert.equal(keccak256(hex.toUpperCase().replace("0X", "0x") as Hex), expected, `upper-case hex of ${size}`);
    assert.deepEqual(keccak256(bytes, "bytes"), viemKeccak256(bytes, "bytes"), `bytes of ${size} to bytes`);
    assert.deepEqual(keccak256(hex, "bytes"), viemKeccak256(hex, "bytes"), `hex of ${size} to bytes`);
  }
});

test("hashes a Uint8Array view with an offset into a larger buffer by its own bytes only", () => {
  const backing = new Uint8Array(randomBytes(1000));
  const view = backing.subarray(100, 900);
  assert.equal(keccak256(view), viemKeccak256(view));
});

test("returns a fresh array each time, not a view of the hasher's memory", () => {
  const first = keccak256("0x01", "bytes");
  const copy = first.slice();
  keccak256("0x02", "bytes");
  assert.deepEqual(first, copy);
});

test("strings viem does not read as hex are hashed as viem hashes them", () => {
  const strings = ["", "abc", "0x1", "0xabc", "0xzz", "0x0g", "0x12 ", " 0x12", "0X12", "0x\u0130\u0130", "0x\u0161\u0161", "héllo", "0x\ud800"];
  for (const s of strings) {
    assert.equal(keccak256(s as Hex), viemKeccak256(s as Hex), JSON.stringify(s));
    assert.deepEqual(keccak256(s as Hex, "bytes"), viemKeccak256(s as Hex, "bytes"), `${JSON.stringify(s)} to bytes`);
  }
});

test("rejects what is neither a string nor a Uint8Array", () => {
  assert.throws(() => keccak256(123 as unknown as Hex), CryptoError);
  assert.throws(() => keccak256(new Uint16Array(4) as unknown as Uint8Array), CryptoError);
});
