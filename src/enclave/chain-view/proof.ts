/**
 * EIP-1186 proofs (eth_getProof) checked inside the enclave: the account
 * proof against a trusted header's stateRoot, each storage proof against the
 * storage root the account proof proved. The nodes of an answer's proofs are
 * pooled by their keccak256 and each key (hashed with keccak256) is looked up
 * from the trusted root through that pool (mpt-lookup.ts); this module checks
 * each proof's root itself first (so a proof for another state is told apart
 * from a broken one), decodes the proven RLP, and compares it with what the
 * endpoint claimed, so a lie in either is a typed error.
 */
import { fromRlp, pad, type Address, type Hex } from "viem";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import { keccak256 } from "../../crypto/keccak.ts";
import { ChainViewError } from "./errors.ts";
import { lookup, type NodeByHash } from "./mpt-lookup.ts";

/** keccak256(RLP("")): the root of an empty trie (an account without storage, a state without accounts). */
export const EMPTY_TRIE_ROOT: Hex = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421";
/** keccak256(""): the code hash of an account without code. */
export const EMPTY_CODE_HASH: Hex = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";

/**
 * Storage proofs one eth_getProof answer may carry (the parser's bound on what an endpoint can make the enclave
 * parse). 1,024: a node's cost per call grows with the contract's storage far more than with the slots asked
 * (EDR at 10,000 vault tokens: about 100 ms for 2 slots, 230 ms for 1,024), so fewer, larger calls are cheaper.
 */
export const MAX_STORAGE_PROOFS = 1_024;

/** An eth_getProof answer (EIP-1186). */
export interface RpcProof {
  address: string;
  balance: string;
  nonce: string;
  codeHash: string;
  storageHash: string;
  accountProof: string[];
  storageProof: { key: string; value: string; proof: string[] }[];
}

/** An account as the state trie holds it; `exists: false` is a proven absence (all fields then zero or empty). */
export interface ProvenAccount {
  exists: boolean;
  nonce: bigint;
  balance: bigint;
  storageRoot: Hex;
  codeHash: Hex;
}

const HASH32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const QUANTITY = /^0x[0-9a-fA-F]+$/;
const STORAGE_KEY = /^0x[0-9a-fA-F]{1,64}$/;
/** Nodes one proof may list: a trie path is at most 64 nibbles deep. */
const MAX_PROOF_NODES = 64;

function malformed(field: string, what: string): never {
  throw new ChainViewError("PROOF_MALFORMED", `the endpoint's eth_getProof answer is malformed (${field} ${what}); check the endpoint`, { details: { field } });
}

function matching(value: unknown, pattern: RegExp, field: string): string {
  if (typeof value !== "string" || !pattern.test(value)) malformed(field, `does not match ${pattern.source}`);
  return value;
}

function nodesAt(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_PROOF_NODES) malformed(field, `is not a list of at most ${MAX_PROOF_NODES} nodes`);
  for (let i = 0; i < value.length; i++) {
    const node: unknown = value[i];
    if (typeof node !== "string" || !isHexBytes(node)) malformed(`${field}[${i}]`, "is not 0x-prefixed hex bytes");
  }
  return value as string[];
}

/**
 * Checks the answer's shape by hand (the parser's bounds: MAX_STORAGE_PROOFS proofs of at most 64 nodes): a
 * schema library's per-element cost was a twentieth of a vault enclave's CPU on answers of a thousand proofs.
 * Returns the fields it checked, nothing else the endpoint sent.
 */
export function parseProof(raw: unknown): RpcProof {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) malformed("the answer", "is not an object");
  const r = raw as Record<string, unknown>;
  const storage = r.storageProof;
  if (!Array.isArray(storage) || storage.length > MAX_STORAGE_PROOFS) malformed("storageProof", `is not a list of at most ${MAX_STORAGE_PROOFS} proofs`);
  return {
    address: matching(r.address, ADDRESS, "address"),
    balance: matching(r.balance, QUANTITY, "balance"),
    nonce: matching(r.nonce, QUANTITY, "nonce"),
    codeHash: matching(r.codeHash, HASH32, "codeHash"),
    storageHash: matching(r.storageHash, HASH32, "storageHash"),
    accountProof: nodesAt(r.accountProof, "accountProof"),
    storageProof: storage.map((entry: unknown, i) => {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) malformed(`storageProof[${i}]`, "is not an object");
      const e = entry as Record<string, unknown>;
      return { key: matching(e.key, STORAGE_KEY, `storageProof[${i}].key`), value: matching(e.value, QUANTITY, `storageProof[${i}].value`), proof: nodesAt(e.proof, `storageProof[${i}].proof`) };
    }),
  };
}

function rlpItems(bytes: Uint8Array, what: string): Hex[] {
  try {
    const decoded = fromRlp(bytes, "hex");
    if (Array.isArray(decoded) && decoded.every((item) => typeof item === "string")) return decoded as Hex[];
  } catch (error) {
    throw new ChainViewError("PROOF_MALFORMED", `the proven ${what} is not valid RLP`, { cause: error });
  }
  throw new ChainViewError("PROOF_MALFORMED", `the proven ${what} is not an RLP list of strings`);
}

function quantityOf(hex: Hex): bigint {
  return hex === "0x" ? 0n : BigInt(hex);
}

/** Proves `address`'s account against `stateRoot`, and checks the endpoint's claimed fields against it. */
export async function verifyAccountProof(stateRoot: Hex, address: Address, proof: RpcProof): Promise<ProvenAccount> {
  if (proof.address.toLowerCase() !== address.toLowerCase()) {
    throw new ChainViewError("PROOF_VALUE_MISMATCH", "the proof is for another account than the one asked for", { details: { asked: address, got: proof.address } });
  }
  const [leaf] = provenLeaves(stateRoot, [address], [proof.accountProof], "account");
  let account: ProvenAccount;
  if (leaf === undefined) {
    account = { exists: false, nonce: 0n, balance: 0n, storageRoot: EMPTY_TRIE_ROOT, codeHash: EMPTY_CODE_HASH };
  } else {
    const items = rlpItems(leaf, "account");
    if (items.length !== 4 || items[2]!.length !== 66 || items[3]!.length !== 66) throw new ChainViewError("PROOF_MALFORMED", "the proven account is not [nonce, balance, storageRoot, codeHash]");
    account = { exists: true, nonce: quantityOf(items[0]!), balance: quantityOf(items[1]!), storageRoot: items[2]!, codeHash: items[3]! };
  }
  const claimed = { nonce: BigInt(proof.nonce), balance: BigInt(proof.balance), storageRoot: proof.storageHash.toLowerCase(), codeHash: proof.codeHash.toLowerCase() };
  // A client may report an absent account's storage and code hashes as zero; the proof settles it either way.
  const absentClaim = !account.exists && claimed.nonce === 0n && claimed.balance === 0n;
  if (!absentClaim && (claimed.nonce !== account.nonce || claimed.balance !== account.balance || claimed.storageRoot !== account.storageRoot || claimed.codeHash !== account.codeHash)) {
    throw new ChainViewError("PROOF_VALUE_MISMATCH", "the endpoint's account fields differ from what its proof proves; the endpoint lied", {
      details: { address, proven: { nonce: String(account.nonce), balance: String(account.balance), storageRoot: account.storageRoot, codeHash: account.codeHash } },
    });
  }
  return account;
}

/** Proves the 32-byte storage word at `slot` against the account's storage root; checks the endpoint's claimed value. */
export async function verifyStorageProof(storageRoot: Hex, slot: Hex, entry: RpcProof["storageProof"][number]): Promise<Hex> {
  return (await verifyStorageProofs(storageRoot, [{ slot, entry }]))[0]!;
}

/**
 * Proves many storage words of one account together: the nodes of every entry's proof are pooled (keyed by
 * their hash, so each is hashed once however many paths share it) and each slot is looked up from the trusted
 * root through that pool. Pooling is sound because a node is only ever reached by its hash from the root: a
 * node sent in another slot's proof can stand in for one missing from this slot's only if it is the same node.
 * Checks each endpoint's claimed value as verifyStorageProof does.
 */
export async function verifyStorageProofs(storageRoot: Hex, items: readonly { slot: Hex; entry: RpcProof["storageProof"][number] }[]): Promise<Hex[]> {
  const keys = items.map(({ slot, entry }) => {
    const key = pad(slot, { size: 32 });
    if (pad(entry.key as Hex, { size: 32 }).toLowerCase() !== key.toLowerCase()) {
      throw new ChainViewError("PROOF_VALUE_MISMATCH", "the storage proof is for another slot than the one asked for", { details: { asked: key, got: entry.key } });
    }
    return key;
  });
  const leaves = provenLeaves(storageRoot, keys, items.map(({ entry }) => entry.proof), "storage");
  return items.map(({ entry }, i) => {
    const leaf = leaves[i];
    let value = 0n;
    if (leaf !== undefined) {
      const decoded = fromRlp(leaf, "hex");
      if (typeof decoded !== "string" || decoded.length > 66) throw new ChainViewError("PROOF_MALFORMED", "the proven storage value is not an RLP string of at most 32 bytes");
      value = quantityOf(decoded);
    }
    if (BigInt(entry.value) !== value) {
      throw new ChainViewError("PROOF_VALUE_MISMATCH", "the endpoint's storage value differs from what its proof proves; the endpoint lied", {
        details: { slot: keys[i], proven: word(value) },
      });
    }
    return word(value);
  });
}

/** The values at `keys` of the trie with root `root` (undefined: a proven absence), from the pooled nodes of their proofs. */
function provenLeaves(root: Hex, keys: readonly Hex[], proofs: readonly (readonly string[])[], what: string): (Uint8Array | undefined)[] {
  // The trusted root says the trie is empty, so nothing is in it, whatever the proofs (clients send [] or ["0x80"]).
  if (root.toLowerCase() === EMPTY_TRIE_ROOT) return keys.map(() => undefined);
  const pool = nodePool(root, proofs, what);
  const rootHash = fromHex(root);
  try {
    // A node missing from the pool throws: an incomplete path is not an absence.
    return keys.map((key) => lookup(rootHash, keccak256(key, "bytes"), pool));
  } catch (error) {
    throw new ChainViewError("PROOF_INVALID", `the ${what} proof does not verify: a node is missing or altered`, { cause: error, details: { root } });
  }
}

/**
 * Every node of `proofs` by its keccak256, each distinct node decoded and hashed once however many paths share it;
 * checks that each proof starts at `root`. The nodes must have passed parseProof (they are decoded without a check).
 */
function nodePool(root: Hex, proofs: readonly (readonly string[])[], what: string): NodeByHash {
  const rootKey = hashKey(fromHex(root));
  const hashOfNode = new Map<string, string>();
  const nodeOfHash = new Map<string, Uint8Array>();
  const hashOf = (hex: string): string => {
    const lower = hex.toLowerCase();
    let key = hashOfNode.get(lower);
    if (key === undefined) {
      const decoded = Buffer.from(lower.slice(2), "hex");
      // A plain Uint8Array view: the proven values handed on are slices of these, and Buffer's slice() does not copy.
      const bytes = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.length);
      key = hashKey(keccak256(bytes, "bytes"));
      hashOfNode.set(lower, key);
      nodeOfHash.set(key, bytes);
    }
    return key;
  };
  for (const proof of proofs) {
    if (proof.length === 0) throw new ChainViewError("PROOF_ROOT_MISMATCH", `the ${what} proof is empty but the trie it should prove is not`, { details: { root } });
    checkProofRoot(root, rootKey, hashOf(proof[0]!), what);
    for (const n of proof) hashOf(n);
  }
  return (hash) => nodeOfHash.get(hashKey(hash));
}

function checkProofRoot(root: Hex, rootKey: string, firstNodeKey: string, what: string): void {
  if (firstNodeKey !== rootKey) {
    throw new ChainViewError("PROOF_ROOT_MISMATCH", `the ${what} proof is for another trie than the trusted root; the endpoint answered for another block or state`, {
      details: { root, proofRoot: toHex(Buffer.from(firstNodeKey, "latin1")) },
    });
  }
}

/** A hash as a Map key: its bytes as a latin1 string (one character per byte), cheaper to make and to look up than hex. */
function hashKey(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("latin1");
}

/**
 * 0x and an even, non-zero number of hex digits. Node's hex decoder stops at the first pair that is not two hex
 * digits, so a full-length decode means every pair was; it reads only the low byte of each UTF-16 code unit, so the
 * string must also be all ASCII (UTF-8 length = string length).
 */
function isHexBytes(s: string): boolean {
  return s.length > 2 && s.length % 2 === 0 && s.startsWith("0x") && Buffer.byteLength(s, "utf8") === s.length && Buffer.from(s.slice(2), "hex").length * 2 === s.length - 2;
}

function word(value: bigint): Hex {
  return pad(`0x${value.toString(16)}`, { size: 32 });
}
