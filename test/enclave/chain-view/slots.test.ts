/** Mapping slots: the one-word fast paths for uint256 and address keys give Solidity's keccak256(abi.encode(key, slot)). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { bytesToHex, encodeAbiParameters, keccak256, type Address } from "viem";
import { mappingSlot, nestedMappingSlot } from "../../../src/enclave/chain-view/slots.ts";

test("uint256 and address keys land where abi.encode puts them", () => {
  for (let i = 0; i < 50; i++) {
    const n = BigInt(bytesToHex(randomBytes(1 + (i % 32))));
    const a = bytesToHex(randomBytes(20)) as Address;
    const slot = BigInt(i);
    assert.equal(mappingSlot({ type: "uint256", value: n }, slot), keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }], [n, slot])));
    assert.equal(mappingSlot({ type: "address", value: a }, slot), keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [a, slot])));
    const inner = keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }], [n, slot]));
    assert.equal(nestedMappingSlot([{ type: "uint256", value: n }, { type: "uint256", value: 3n }], slot), keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "bytes32" }], [3n, inner])));
  }
  assert.equal(mappingSlot({ type: "uint256", value: 0n }, 1n), keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }], [0n, 1n])));
});

test("keys that are not a uint256 or an address are refused", () => {
  assert.throws(() => mappingSlot({ type: "uint256", value: -1n }, 1n), RangeError);
  assert.throws(() => mappingSlot({ type: "uint256", value: 1n << 256n }, 1n), RangeError);
  assert.throws(() => mappingSlot({ type: "address", value: "0x1234" as Address }, 1n), RangeError);
});
