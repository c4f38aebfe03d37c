import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import { collaborationsAbi } from "../abi/Collaborations.ts";

/** What the contract stores of a collaboration; the full terms are in its CollaborationCreated event. */
export interface CollaborationState {
  collaborationId: bigint;
  /** False when no collaboration has this id. */
  exists: boolean;
  maxRuns: number;
  runs: number;
  /** Fixed point, EPSILON_SCALE units (src/protocol/collaboration.ts). */
  dpBudget: bigint;
  dpSpent: bigint;
  partyCount: number;
  allowSimulated: boolean;
  /** Bit i set: party i's approval stands. */
  approvals: number;
  /** Every party's approval stands. */
  approved: boolean;
  computeOperator: Address;
  computeMeasurement: Hex;
  termsHash: Hex;
  queryDigest: Hex;
  policyDigest: Hex;
}

export async function readCollaboration(client: Client, contract: Address, collaborationId: bigint): Promise<CollaborationState> {
  const [maxRuns, runs, dpBudget, dpSpent, partyCount, allowSimulated, approvals, computeOperator, computeMeasurement, termsHash, queryDigest, policyDigest] =
    await readContract(client, { address: contract, abi: collaborationsAbi, functionName: "collaborations", args: [collaborationId] });
  return {
    collaborationId,
    exists: partyCount !== 0,
    maxRuns,
    runs,
    dpBudget,
    dpSpent,
    partyCount,
    allowSimulated,
    approvals,
    approved: partyCount !== 0 && approvals === 2 ** partyCount - 1,
    computeOperator,
    computeMeasurement,
    termsHash,
    queryDigest,
    policyDigest,
  };
}

/** A party's place in a collaboration: `index` is null when `account` is not a party; `nonce` is what its next Approval must name. */
export async function readPartyState(client: Client, contract: Address, collaborationId: bigint, account: Address): Promise<{ index: number | null; nonce: bigint }> {
  const [index, nonce] = await readContract(client, { address: contract, abi: collaborationsAbi, functionName: "parties", args: [collaborationId, account] });
  return { index: index === 0 ? null : index - 1, nonce };
}
