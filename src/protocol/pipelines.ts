/**
 * A pipeline as contracts/Pipelines.sol holds it, and the EIP-712 Run a
 * candidate enclave signs to anchor one run: the cursor it started from and
 * the one it left, the records it read and wrote, and the digest of the run's
 * provenance record (./provenance.ts). Must match the struct, type hash and
 * EIP712 domain of the contract.
 */
import { encodeAbiParameters, getAddress, hashTypedData, keccak256, type Address, type Hex } from "viem";

export const pipelinesDomainName = "Cloister Pipelines";
export const pipelinesDomainVersion = "1";

export interface RunAnchor {
  /** The run's id (bytes32): anchored once per pipeline. */
  runId: Hex;
  /** Must equal the cursor the previous run left (zero before the first run). */
  cursorBefore: Hex;
  cursorAfter: Hex;
  recordsRead: bigint;
  recordsWritten: bigint;
  provenanceDigest: Hex;
}

export const pipelineRunTypes = {
  Run: [
    { name: "pipelineId", type: "uint256" },
    { name: "pipelineDigest", type: "bytes32" },
    { name: "runId", type: "bytes32" },
    { name: "cursorBefore", type: "bytes32" },
    { name: "cursorAfter", type: "bytes32" },
    { name: "recordsRead", type: "uint64" },
    { name: "recordsWritten", type: "uint64" },
    { name: "provenanceDigest", type: "bytes32" },
  ],
} as const;

export function pipelinesDomain(chainId: bigint, verifyingContract: Address) {
  return { name: pipelinesDomainName, version: pipelinesDomainVersion, chainId, verifyingContract } as const;
}

/** The id registerPipeline gives (`owner`, `salt`) on `chainId` at `contract`. */
export function pipelineId(chainId: bigint, contract: Address, owner: Address, salt: Hex): bigint {
  return BigInt(
    keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "address" }, { type: "bytes32" }], [chainId, contract, owner, salt])),
  );
}

/** The digest a candidate enclave signs for `anchor` of `pipelineId`, whose registered digest is `pipelineDigest`. */
export function pipelineRunDigest(domain: ReturnType<typeof pipelinesDomain>, pipelineId: bigint, pipelineDigest: Hex, anchor: RunAnchor): Hex {
  return hashTypedData({ domain, types: pipelineRunTypes, primaryType: "Run", message: { pipelineId, pipelineDigest, ...anchor } });
}

/**
 * Where Pipelines keeps its state (OpenZeppelin's EIP712 holds slots 0 and 1), for eth_getProof:
 * `pipelines[id]` is three words from keccak256(abi.encode(id, 2)) (owner|runs|retired|requests, digest, cursor);
 * `isCandidate[id][enclave]` and `runAnchored[id][runId]` one word each at the nested mappings of slots 3 and 4.
 */
export const pipelinesStorage = {
  pipelinesSlot: 2n,
  isCandidateSlot: 3n,
  runAnchoredSlot: 4n,
  /** Word offsets within pipelines[id]. */
  words: { owner: 0n, pipelineDigest: 1n, cursor: 2n },
} as const;

/** Word 0 of pipelines[id]: owner (zero: no such pipeline), runs anchored, retired (the owner's request count above them is not read). */
export function decodePipelineOwnerWord(word: Hex): { owner: Address; runs: number; retired: boolean } {
  const v = BigInt(word);
  return {
    owner: getAddress(`0x${(v & ((1n << 160n) - 1n)).toString(16).padStart(40, "0")}`),
    runs: Number((v >> 160n) & 0xffffffffn),
    retired: ((v >> 192n) & 0xffn) !== 0n,
  };
}
