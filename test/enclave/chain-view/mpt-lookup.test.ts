/**
 * The Merkle-Patricia lookup over a hash-keyed node pool (mpt-lookup.ts),
 * checked against @ethereumjs/mpt on tries the library builds: the same
 * values, proven absences, embedded nodes, extensions and a branch's own
 * value; a missing or altered node throws, and one key's proof does not prove
 * another. Then proof.ts on a library-built storage trie (the pooled answer
 * of many slots), and parseProof's check of proof nodes.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createMPT, createMerkleProof, type MerklePatriciaTrie } from "@ethereumjs/mpt";
import { fromRlp, numberToHex, pad, toRlp, type Hex } from "viem";
import { toHex } from "../../../src/crypto/bytes.ts";
import { keccak256 } from "../../../src/crypto/keccak.ts";
import { ChainViewError } from "../../../src/enclave/chain-view/errors.ts";
import { lookup, type NodeByHash } from "../../../src/enclave/chain-view/mpt-lookup.ts";
import { EMPTY_TRIE_ROOT, MAX_STORAGE_PROOFS, parseProof, verifyStorageProofs } from "../../../src/enclave/chain-view/proof.ts";

const hashBytes = (bytes: Uint8Array) => keccak256(bytes, "bytes");
const bytesOf = (hex: Hex) => new Uint8Array(Buffer.from(hex.slice(2), "hex"));

/** A trie built by the library; `hashed`: keys hashed with keccak256 as in Ethereum's tries. */
async function trieOf(entries: readonly (readonly [Uint8Array, Uint8Array])[], hashed: boolean): Promise<MerklePatriciaTrie> {
  const trie = await createMPT({ useKeyHashing: hashed, useKeyHashingFunction: hashBytes });
  for (const [key, value] of entries) await trie.put(key, value);
  return trie;
}

/** Every node of `proofs` by its keccak256, as proof.ts pools them. */
function poolOf(...proofs: readonly Uint8Array[][]): NodeByHash {
  const nodes = new Map<string, Uint8Array>();
  for (const proof of proofs) for (const node of proof) nodes.set(toHex(hashBytes(node)), node);
  return (hash) => nodes.get(toHex(hash));
}

/** What the library's get answers, in the lookup's terms (hex, undefined for absent). */
async function libraryValue(trie: MerklePatriciaTrie, key: Uint8Array): Promise<Hex | undefined> {
  const value = await trie.get(key);
  return value === null ? undefined : toHex(value);
}

function lookedUp(trie: MerklePatriciaTrie, path: Uint8Array, pool: NodeByHash): Hex | undefined {
  const value = lookup(trie.root(), path, pool);
  return value === undefined ? undefined : toHex(value);
}

/** Slot-like 32-byte keys, the same every run. */
function slotKey(i: number): Uint8Array {
  return hashBytes(bytesOf(numberToHex(i, { size: 32 })));
}

/** A storage-like value: RLP of 1 to 32 bytes with no leading zero. */
function storageValue(i: number): Uint8Array {
  const word = slotKey(i + 1_000_000);
  const length = 1 + (i % 32);
  const bytes = word.subarray(0, length);
  if (bytes[0] === 0) bytes[0] = 1;
  return bytesOf(toRlp(toHex(bytes)));
}

describe("lookup over a pool of proof nodes", () => {
  let big: MerklePatriciaTrie;
  const present = Array.from({ length: 200 }, (_, i) => slotKey(i * 15));
  const absent = Array.from({ length: 100 }, (_, i) => slotKey(100_000 + i));
  before(async () => {
    big = await trieOf(Array.from({ length: 3_000 }, (_, i) => [slotKey(i), storageValue(i)] as const), true);
  });

  test("a storage-like trie of 3,000 keys: the library's values and absences, from each key's proof and from all pooled", async () => {
    const keys = [...present, ...absent];
    const proofs = await Promise.all(keys.map((key) => createMerkleProof(big, key)));
    const pooled = poolOf(...proofs);
    for (const [i, key] of keys.entries()) {
      const expected = await libraryValue(big, key);
      assert.equal(expected === undefined, i >= present.length);
      assert.equal(lookedUp(big, hashBytes(key), poolOf(proofs[i]!)), expected);
      assert.equal(lookedUp(big, hashBytes(key), pooled), expected);
    }
  });

  test("a node missing from the pool throws: the leaf, or the root", async () => {
    const proof = await createMerkleProof(big, present[0]!);
    assert.throws(() => lookup(big.root(), hashBytes(present[0]!), poolOf(proof.slice(0, -1))), /missing from the proof/);
    assert.throws(() => lookup(big.root(), hashBytes(present[0]!), poolOf(proof.slice(1))), /missing from the proof/);
    // An absence proven by a path that ends at an empty child still needs every node down to it.
    const absence = await createMerkleProof(big, absent[0]!);
    assert.throws(() => lookup(big.root(), hashBytes(absent[0]!), poolOf(absence.slice(0, -1))), /missing from the proof/);
  });

  test("an altered node hashes to something its parent does not reference, so it is missing", async () => {
    const proof = await createMerkleProof(big, present[1]!);
    const leaf = Uint8Array.from(proof.at(-1)!);
    leaf[leaf.length - 1]! ^= 0x01;
    assert.throws(() => lookup(big.root(), hashBytes(present[1]!), poolOf([...proof.slice(0, -1), leaf])), /missing from the proof/);
  });

  test("one key's proof does not prove another key that is in the trie", async () => {
    const [a, b] = present;
    assert.notEqual(await libraryValue(big, b!), undefined);
    const proofOfA = await createMerkleProof(big, a!);
    assert.throws(() => lookup(big.root(), hashBytes(b!), poolOf(proofOfA)), /missing from the proof/);
  });

  test("embedded nodes (leaves under 32 bytes held in their branch) and an extension: found without being pooled", async () => {
    // 32-byte keys sharing 31 bytes: an extension of 62 nibbles, a branch, then leaves of one nibble and a one-byte value.
    const key = (last: number) => Uint8Array.from([...new Uint8Array(31).fill(0xab), last]);
    const entries = [0x00, 0x01, 0x02, 0x0f, 0x10, 0x11, 0x20, 0xf3].map((last) => [key(last), Uint8Array.of(last + 1)] as const);
    const trie = await trieOf(entries, false);
    for (const [k] of entries) {
      const proof = await createMerkleProof(trie, k);
      const embedded = proof.filter((node) => node.length < 32);
      assert.ok(embedded.length > 0, "the key's leaf or branch is embedded");
      const hashedOnly = poolOf(proof.filter((node) => node.length >= 32));
      assert.equal(lookedUp(trie, k, hashedOnly), await libraryValue(trie, k));
    }
    // Absent: at an empty child of the bottom branch, inside an embedded branch, and off the extension's path.
    for (const missing of [key(0x05), key(0x12), Uint8Array.from([...new Uint8Array(31).fill(0xac), 0x00])]) {
      assert.equal(await libraryValue(trie, missing), undefined);
      assert.equal(lookedUp(trie, missing, poolOf(await createMerkleProof(trie, missing))), undefined);
    }
  });

  test("a value held by a branch itself (a key that is a prefix of others), as the library reads it", async () => {
    const entries = [[0x01], [0x01, 0x02], [0x01, 0x03], [0x01, 0x02, 0x03], [0x02]].map((k, i) => [Uint8Array.from(k), bytesOf(toRlp(toHex(slotKey(i))))] as const);
    const trie = await trieOf(entries, false);
    for (const k of [...entries.map(([key]) => key), Uint8Array.of(0x01, 0x04), Uint8Array.of(0x03)]) {
      assert.equal(lookedUp(trie, k, poolOf(await createMerkleProof(trie, k))), await libraryValue(trie, k));
    }
  });

  test("an empty child is a proven absence; malformed nodes throw", () => {
    const root = new Uint8Array(32).fill(7);
    const path = new Uint8Array(32).fill(0x11);
    const rootIs = (node: Hex): NodeByHash => (hash) => (toHex(hash) === toHex(root) ? bytesOf(node) : undefined);
    const emptyBranch = toRlp(Array.from({ length: 17 }, () => "0x" as Hex));
    assert.equal(lookup(root, path, rootIs(emptyBranch)), undefined);
    const branchWith = (child: Hex) => toRlp([...Array.from({ length: 17 }, (_, i) => (i === 1 ? child : "0x")) as Hex[]]);
    const malformed: [string, Hex, RegExp][] = [
      ["three items", toRlp(["0x01", "0x02", "0x03"]), /3 items/],
      ["a string, not a list", toRlp("0x1234"), /not exactly one RLP list/],
      ["trailing bytes", `${emptyBranch}00`, /not exactly one RLP list/],
      ["a truncated list", emptyBranch.slice(0, -2) as Hex, /runs past/],
      ["a single byte with a length prefix", `0xc3${"81"}05${"80"}`, /single RLP byte/],
      ["a hex-prefix flag above 3", toRlp(["0x40", "0x01"]), /hex-prefix/],
      ["an even path with a non-zero pad nibble", toRlp(["0x2f11", "0x01"]), /hex-prefix/],
      ["a child reference of 5 bytes", branchWith("0x0102030405"), /neither a hash nor an embedded node/],
      ["a leaf value that is a list", toRlp([`0x20${"11".repeat(32)}`, ["0x01"]]), /a list/],
      ["an extension with an empty child", toRlp(["0x11", "0x"]), /empty child/],
    ];
    for (const [what, node, error] of malformed) assert.throws(() => lookup(root, path, rootIs(node)), error, what);
  });
});

describe("verifyStorageProofs on a library-built storage trie", () => {
  test("1,000 slots of one answer (some unset): the library's values; a node missing from the pool is PROOF_INVALID", async () => {
    const slots = Array.from({ length: 4_000 }, (_, i) => toHex(slotKey(i)));
    const trie = await trieOf(slots.map((slot, i) => [bytesOf(slot), storageValue(i)] as const), true);
    const asked = Array.from({ length: 1_000 }, (_, i) => (i % 10 === 9 ? toHex(slotKey(50_000 + i)) : slots[i * 4]!));
    const items = await Promise.all(
      asked.map(async (slot) => {
        const stored = await libraryValue(trie, bytesOf(slot));
        const value = stored === undefined ? "0x0" : numberToHex(BigInt(fromRlp(stored, "hex") as Hex));
        const proof = (await createMerkleProof(trie, bytesOf(slot))).map(toHex);
        return { slot, entry: { key: slot, value, proof } };
      }),
    );
    assert.ok(items.some(({ entry }) => entry.value === "0x0") && items.some(({ entry }) => entry.value !== "0x0"));
    const root = toHex(trie.root());
    assert.deepEqual(await verifyStorageProofs(root, items), items.map(({ entry }) => pad(entry.value, { size: 32 })));
    // The first slot's leaf left out: no other slot's proof holds it.
    const [first, ...rest] = items;
    const cut = { ...first!, entry: { ...first!.entry, proof: first!.entry.proof.slice(0, -1) } };
    await assert.rejects(verifyStorageProofs(root, [cut, ...rest]), (e) => e instanceof ChainViewError && e.code === "PROOF_INVALID");
  });
});

describe("parseProof's check of proof nodes", () => {
  const answer = {
    address: `0x${"11".repeat(20)}`,
    balance: "0x0",
    nonce: "0x0",
    codeHash: `0x${"00".repeat(32)}`,
    storageHash: EMPTY_TRIE_ROOT,
    accountProof: ["0xf8518080a0", "0xAbCdEf"],
    storageProof: [{ key: "0x01", value: "0x0", proof: ["0x80"] }],
  };

  test("0x and an even, non-zero number of hex digits (either case) is a node", () => {
    assert.deepEqual(parseProof(answer).accountProof, answer.accountProof);
  });

  test("non-hex, odd length, empty 0x, no 0x, non-ASCII and non-strings are PROOF_MALFORMED", () => {
    // "\u0130\u0131": Node's hex decoder reads only each code unit's low byte (0x30, 0x31), so it would decode.
    for (const bad of ["0xzz", "0x0g", "0xabc", "0x", "abcd", "0X12", "0x\u0130\u0131", "0x12 ", 12, null]) {
      assert.throws(() => parseProof({ ...answer, accountProof: [bad] }), (e) => e instanceof ChainViewError && e.code === "PROOF_MALFORMED", String(bad));
      assert.throws(() => parseProof({ ...answer, storageProof: [{ ...answer.storageProof[0], proof: ["0x80", bad] }] }), (e) => e instanceof ChainViewError && e.code === "PROOF_MALFORMED", String(bad));
    }
  });

  test("a malformed field is named, and the answer's bounds hold (1,024 storage proofs, 64 nodes a proof)", () => {
    const malformed = (raw: unknown, field: RegExp) =>
      assert.throws(() => parseProof(raw), (e) => e instanceof ChainViewError && e.code === "PROOF_MALFORMED" && field.test(e.message), field.source);
    malformed({ ...answer, storageHash: "0x12" }, /\(storageHash /);
    malformed({ ...answer, address: undefined }, /\(address /);
    malformed({ ...answer, storageProof: [{ ...answer.storageProof[0], key: "0x" }] }, /storageProof\[0\]\.key/);
    malformed({ ...answer, storageProof: [answer.storageProof[0], "nope"] }, /storageProof\[1\] is not an object/);
    malformed({ ...answer, accountProof: Array.from({ length: 65 }, () => "0x80") }, /accountProof is not a list of at most 64/);
    malformed({ ...answer, storageProof: Array.from({ length: MAX_STORAGE_PROOFS + 1 }, () => answer.storageProof[0]) }, /storageProof is not a list of at most 1024/);
    malformed([answer], /the answer is not an object/);
    assert.equal(parseProof({ ...answer, storageProof: Array.from({ length: MAX_STORAGE_PROOFS }, () => answer.storageProof[0]) }).storageProof.length, MAX_STORAGE_PROOFS);
    assert.deepEqual(Object.keys(parseProof({ ...answer, extra: "ignored" })).sort(), ["accountProof", "address", "balance", "codeHash", "nonce", "storageHash", "storageProof"]);
  });
});
