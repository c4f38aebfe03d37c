/**
 * What an owner or an auditor lists from the Grants contract's logs: the grants
 * of an owner or of an operator (GrantCreated, with their full terms and
 * purpose), the uses of a grant (GrantUsed: run id, enclave, provenance digest)
 * and its revocation (GrantRevoked).
 */
import type { Address, BlockNumber, Client, Hex } from "viem";
import { getContractEvents } from "viem/actions";
import type { GrantTerms } from "../../protocol/grants.ts";
import { grantsAbi } from "../abi/Grants.ts";

interface Logged {
  blockNumber: bigint;
  transactionHash: Hex;
}

export interface CreatedGrantLog extends Logged {
  grantId: bigint;
  terms: GrantTerms;
  salt: Hex;
  relayer: Address;
}

export interface GrantUseLog extends Logged {
  grantId: bigint;
  runId: Hex;
  enclave: Address;
  provenanceDigest: Hex;
  /** 1 for the first use, then one more per use. */
  use: number;
}

export interface GrantRevocationLog extends Logged {
  grantId: bigint;
  owner: Address;
  /** Uses recorded before the revocation. */
  uses: number;
  /** False: the owner voided a signed grant nobody had relayed. */
  created: boolean;
}

/** The grants created for `owner` and/or `operator` (both optional filters), oldest first. */
export async function listGrants(client: Client, contract: Address, filter: { owner?: Address; operator?: Address }, fromBlock: BlockNumber = 0n): Promise<CreatedGrantLog[]> {
  const logs = await getContractEvents(client, { address: contract, abi: grantsAbi, eventName: "GrantCreated", args: filter, fromBlock, toBlock: "latest", strict: true });
  return logs.map(({ args, blockNumber, transactionHash }) => ({
    grantId: args.grantId,
    terms: args.terms,
    salt: args.salt,
    relayer: args.relayer,
    blockNumber,
    transactionHash,
  }));
}

/** The uses recorded for `grantId`, in use order. */
export async function listGrantUses(client: Client, contract: Address, grantId: bigint, fromBlock: BlockNumber = 0n): Promise<GrantUseLog[]> {
  const logs = await getContractEvents(client, { address: contract, abi: grantsAbi, eventName: "GrantUsed", args: { grantId }, fromBlock, toBlock: "latest", strict: true });
  return logs
    .map(({ args, blockNumber, transactionHash }) => ({ ...args, blockNumber, transactionHash }))
    .sort((a, b) => a.use - b.use);
}

/** The revocation of `grantId`, or null while it stands. */
export async function readGrantRevocation(client: Client, contract: Address, grantId: bigint, fromBlock: BlockNumber = 0n): Promise<GrantRevocationLog | null> {
  const logs = await getContractEvents(client, { address: contract, abi: grantsAbi, eventName: "GrantRevoked", args: { grantId }, fromBlock, toBlock: "latest", strict: true });
  const log = logs[0];
  return log ? { ...log.args, blockNumber: log.blockNumber, transactionHash: log.transactionHash } : null;
}
