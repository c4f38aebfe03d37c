/**
 * The EIP-712 completion an enclave signs and TaskMarket checks on chain.
 * Must match COMPLETION_TYPEHASH and the EIP712 domain in contracts/TaskMarket.sol.
 */
import type { Address, Hex } from "viem";

export const completionDomainName = "Cloister TaskMarket";
export const completionDomainVersion = "1";

export const completionTypes = {
  Completion: [
    { name: "taskId", type: "uint256" },
    { name: "programDigest", type: "bytes32" },
    { name: "inputDigest", type: "bytes32" },
    { name: "outputDigest", type: "bytes32" },
    { name: "provenanceDigest", type: "bytes32" },
    { name: "outputCid", type: "string" },
    { name: "provenanceCid", type: "string" },
  ],
} as const;

export interface Completion {
  taskId: bigint;
  programDigest: Hex;
  inputDigest: Hex;
  outputDigest: Hex;
  provenanceDigest: Hex;
  /** Where the result blob is on IPFS: signed, so a relay cannot point the requester elsewhere. */
  outputCid: string;
  /** Where the provenance envelope is on IPFS; signed likewise. */
  provenanceCid: string;
}

export function completionDomain(chainId: bigint, market: Address) {
  return { name: completionDomainName, version: completionDomainVersion, chainId, verifyingContract: market } as const;
}
