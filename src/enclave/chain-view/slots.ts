/**
 * Solidity storage locations, so a job can name the word it wants proved:
 * a mapping entry lives at keccak256(key . slot), where a value-type key is
 * ABI-encoded to 32 bytes and a string or bytes key is its raw bytes; a
 * nested mapping applies that once per key; a dynamic array's element i of a
 * one-word type lives at keccak256(slot) + i. (Solidity's storage layout.)
 */
import { concat, encodeAbiParameters, getAddress, pad, toHex, type Address, type Hex } from "viem";
import { keccak256 } from "../../crypto/keccak.ts";

const wordModulus = 2n ** 256n;

export type MappingKey =
  | { type: "address"; value: Address }
  | { type: "uint256"; value: bigint }
  | { type: "bytes32"; value: Hex }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "bytes"; value: Hex };

/** A slot number as the 32-byte key eth_getProof takes. */
export function slotKey(slot: bigint | number): Hex {
  return pad(toHex(BigInt(slot)), { size: 32 });
}

function keyBytes(key: MappingKey): Hex {
  switch (key.type) {
    case "string":
      return toHex(new TextEncoder().encode(key.value));
    case "bytes":
      return key.value;
    // The two key types the vault asks thousands of times per page: one word of hex without the general encoder.
    case "uint256":
      if (key.value < 0n || key.value >= wordModulus) throw new RangeError(`${key.value} is not a uint256 mapping key`);
      return `0x${key.value.toString(16).padStart(64, "0")}`;
    case "address":
      if (!/^0x[0-9a-fA-F]{40}$/.test(key.value)) throw new RangeError(`${key.value} is not an address mapping key`);
      return `0x${key.value.slice(2).toLowerCase().padStart(64, "0")}`;
    default:
      return encodeAbiParameters([{ type: key.type }], [key.value]);
  }
}

/** The slot of `mapping[key]` for a mapping declared at `slot`. */
export function mappingSlot(key: MappingKey, slot: bigint | number | Hex): Hex {
  const base = typeof slot === "string" ? pad(slot, { size: 32 }) : slotKey(slot);
  return keccak256(concat([keyBytes(key), base]));
}

/** The slot of `mapping[k0][k1]...` for nested mappings declared at `slot`. */
export function nestedMappingSlot(keys: readonly MappingKey[], slot: bigint | number): Hex {
  let at: Hex = slotKey(slot);
  for (const key of keys) at = mappingSlot(key, at);
  return at;
}

/** The slot of element `index` of a dynamic array of one-word elements declared at `slot`. */
export function arrayElementSlot(slot: bigint | number, index: bigint): Hex {
  return slotKey((BigInt(keccak256(slotKey(slot))) + index) % wordModulus);
}

/** The slot `offset` words past `slot` (a field of a struct stored there). */
export function slotPlus(slot: Hex, offset: bigint): Hex {
  return slotKey((BigInt(slot) + offset) % wordModulus);
}

/** The address in the low 20 bytes of a storage word (an `address` variable, an ERC-721 owner). */
export function addressFromWord(word: Hex): Address {
  return getAddress(`0x${pad(word, { size: 32 }).slice(26)}`);
}
