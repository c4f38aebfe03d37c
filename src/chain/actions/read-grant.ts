import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import { grantsAbi } from "../abi/Grants.ts";

/** What the contract stores of a grant; the purpose is only in its GrantCreated event. */
export interface GrantState {
  grantId: bigint;
  /** False when no grant has this id (neither created nor cancelled). */
  exists: boolean;
  /** True when the owner cancelled the id before anyone relayed the signed grant: it holds no terms. */
  cancelledUnused: boolean;
  owner: Address;
  operator: Address;
  dataset: Hex;
  operations: number;
  statementDigest: Hex;
  notBefore: number;
  expiry: number;
  maxUses: number;
  uses: number;
  revoked: boolean;
}

export async function readGrant(client: Client, contract: Address, grantId: bigint): Promise<GrantState> {
  const [owner, notBefore, expiry, operations, revoked, operator, maxUses, uses, dataset, statementDigest] = await readContract(client, {
    address: contract,
    abi: grantsAbi,
    functionName: "grants",
    args: [grantId],
  });
  const exists = owner !== "0x0000000000000000000000000000000000000000";
  return { grantId, exists, cancelledUnused: exists && maxUses === 0, owner, operator, dataset, operations, statementDigest, notBefore, expiry, maxUses, uses, revoked };
}

/** Whether run `runId` is recorded as a use of `grantId`. */
export function isRunRecorded(client: Client, contract: Address, grantId: bigint, runId: Hex): Promise<boolean> {
  return readContract(client, { address: contract, abi: grantsAbi, functionName: "runRecorded", args: [grantId, runId] });
}
