/**
 * An owner grant as contracts/Grants.sol holds it: the terms an owner signs
 * (EIP-712 Grant, relayable) to let one operator do one kind of direct
 * manipulation of one dataset, and the EIP-712 Use an enclave of that
 * operator signs for each use. Must match the struct, type hashes and EIP712
 * domain of the contract.
 */
import { encodeAbiParameters, getAddress, hashTypedData, keccak256, stringToBytes, type Address, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { CloisterError } from "../util/base-error.ts";
import { DOMAIN } from "./domains.ts";

export const grantsDomainName = "Cloister Grants";
export const grantsDomainVersion = "1";

/** The operation bits of a grant's `operations` mask. */
export const GRANT_OPERATIONS = { read: 1, insert: 2, update: 4, delete: 8 } as const;
export type GrantOperation = keyof typeof GRANT_OPERATIONS;

export interface GrantTerms {
  /** Signs the grant (or sends createGrant) and alone may revoke it. */
  owner: Address;
  /** Only enclaves registered for this operator may record uses. */
  operator: Address;
  /** datasetId(name), or a dataset descriptor's digest. */
  dataset: Hex;
  /** operationsMask([...]). */
  operations: number;
  /** statementDigest(text) of the exact statement or program allowed. */
  statementDigest: Hex;
  /** Why the owner grants it; emitted on chain, so public. */
  purpose: string;
  /** Unix seconds: usable from notBefore (inclusive) to expiry (exclusive). */
  notBefore: number;
  expiry: number;
  maxUses: number;
}

export const grantTypes = {
  Grant: [
    { name: "owner", type: "address" },
    { name: "operator", type: "address" },
    { name: "dataset", type: "bytes32" },
    { name: "operations", type: "uint8" },
    { name: "statementDigest", type: "bytes32" },
    { name: "purpose", type: "string" },
    { name: "notBefore", type: "uint40" },
    { name: "expiry", type: "uint40" },
    { name: "maxUses", type: "uint32" },
    { name: "salt", type: "bytes32" },
  ],
} as const;

export const useTypes = {
  Use: [
    { name: "grantId", type: "uint256" },
    { name: "runId", type: "bytes32" },
    { name: "provenanceDigest", type: "bytes32" },
  ],
} as const;

export class GrantTermsError extends CloisterError<"INVALID_GRANT_OPERATION"> {}

export function grantsDomain(chainId: bigint, verifyingContract: Address) {
  return { name: grantsDomainName, version: grantsDomainVersion, chainId, verifyingContract } as const;
}

/** The mask of `operations` ("read", "update", ...); an unknown name is refused. */
export function operationsMask(operations: readonly string[]): number {
  let mask = 0;
  for (const op of operations) {
    if (!Object.hasOwn(GRANT_OPERATIONS, op)) {
      throw new GrantTermsError("INVALID_GRANT_OPERATION", `unknown grant operation ${JSON.stringify(op)}; use read, insert, update or delete`, { details: { operation: op } });
    }
    mask |= GRANT_OPERATIONS[op as GrantOperation];
  }
  return mask;
}

/** The names of the operations set in `mask`, in bit order. */
export function operationsOf(mask: number): GrantOperation[] {
  return (Object.keys(GRANT_OPERATIONS) as GrantOperation[]).filter((op) => (mask & GRANT_OPERATIONS[op]) !== 0);
}

/** A dataset named by the owner, as a grant names it: keccak256 of the UTF-8 name. */
export function datasetId(name: string): Hex {
  return keccak256(stringToBytes(name));
}

/** The digest a grant names for a statement or program: SHA-256(DOMAIN.grantStatement || 0x00 || bytes). */
export function statementDigest(statement: string | Uint8Array): Hex {
  const body = typeof statement === "string" ? Buffer.from(statement, "utf8") : statement;
  return sha256(Buffer.concat([new TextEncoder().encode(DOMAIN.grantStatement), Buffer.from([0]), body]));
}

/** The id createGrant gives (`owner`, `salt`) on `chainId` at `contract`. */
export function grantId(chainId: bigint, contract: Address, owner: Address, salt: Hex): bigint {
  return BigInt(
    keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "address" }, { type: "bytes32" }], [chainId, contract, owner, salt])),
  );
}

/** The digest the owner signs to create a grant of `terms` with `salt`. */
export function grantDigest(domain: ReturnType<typeof grantsDomain>, terms: GrantTerms, salt: Hex): Hex {
  return hashTypedData({ domain, types: grantTypes, primaryType: "Grant", message: { ...terms, salt } });
}

/** The digest an enclave of the grant's operator signs to record run `runId` as one use of `grantId`. */
export function useDigest(domain: ReturnType<typeof grantsDomain>, grantId: bigint, runId: Hex, provenanceDigest: Hex): Hex {
  return hashTypedData({ domain, types: useTypes, primaryType: "Use", message: { grantId, runId, provenanceDigest } });
}

/**
 * Where Grants keeps its state (Solidity's storage layout; OpenZeppelin's EIP712 holds slots 0 and 1), so an
 * enclave can prove a grant's revocation, window and uses with eth_getProof (src/enclave/chain-view/):
 * `grants[id]` is a struct of four words from keccak256(abi.encode(id, 2)); `runRecorded[id][runId]` one word
 * (1: recorded) at the nested mapping of slot 3.
 */
export const grantsStorage = {
  grantsSlot: 2n,
  runRecordedSlot: 3n,
  /** Word offsets within grants[id]. */
  words: { owner: 0n, operator: 1n, dataset: 2n, statementDigest: 3n },
} as const;

/** Word 0 of grants[id]: owner, notBefore, expiry, operations, revoked (owner zero: no such grant). */
export function decodeGrantOwnerWord(word: Hex): { owner: Address; notBefore: number; expiry: number; operations: number; revoked: boolean } {
  const v = BigInt(word);
  const bits = (from: bigint, width: bigint) => (v >> from) & ((1n << width) - 1n);
  return {
    owner: getAddress(`0x${bits(0n, 160n).toString(16).padStart(40, "0")}`),
    notBefore: Number(bits(160n, 40n)),
    expiry: Number(bits(200n, 40n)),
    operations: Number(bits(240n, 8n)),
    revoked: bits(248n, 8n) !== 0n,
  };
}

/** Word 1 of grants[id]: operator, maxUses (0 with an owner: cancelled before it was relayed), uses. */
export function decodeGrantOperatorWord(word: Hex): { operator: Address; maxUses: number; uses: number } {
  const v = BigInt(word);
  const bits = (from: bigint, width: bigint) => (v >> from) & ((1n << width) - 1n);
  return { operator: getAddress(`0x${bits(0n, 160n).toString(16).padStart(40, "0")}`), maxUses: Number(bits(160n, 32n)), uses: Number(bits(192n, 32n)) };
}
