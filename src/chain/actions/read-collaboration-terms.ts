import type { Address, BlockNumber, Client, Hex } from "viem";
import { getContractEvents, readContract } from "viem/actions";
import { termsHash, type CollaborationTerms } from "../../protocol/collaboration.ts";
import { CloisterError } from "../../util/base-error.ts";
import { collaborationsAbi } from "../abi/Collaborations.ts";

export class CollaborationReadError extends CloisterError<"COLLABORATION_NOT_FOUND" | "COLLABORATION_TERMS_MISMATCH"> {}

export interface CreatedCollaboration {
  collaborationId: bigint;
  creator: Address;
  terms: CollaborationTerms;
  termsHash: Hex;
  blockNumber: bigint;
}

/**
 * The full terms of `collaborationId`, from its CollaborationCreated event (the contract stores only their hash),
 * checked against the hash the contract stores: an endpoint cannot hand back other terms. `fromBlock` is where
 * to start looking (the contract's deploy block).
 */
export async function readCollaborationTerms(client: Client, contract: Address, collaborationId: bigint, fromBlock: BlockNumber = 0n): Promise<CreatedCollaboration> {
  const [logs, stored] = await Promise.all([
    getContractEvents(client, { address: contract, abi: collaborationsAbi, eventName: "CollaborationCreated", args: { collaborationId }, fromBlock, toBlock: "latest", strict: true }),
    readContract(client, { address: contract, abi: collaborationsAbi, functionName: "collaborations", args: [collaborationId] }),
  ]);
  const storedHash = stored[9];
  const [log] = logs;
  if (!log || stored[4] === 0) {
    throw new CollaborationReadError("COLLABORATION_NOT_FOUND", `no collaboration ${collaborationId} at ${contract} since block ${fromBlock}; check the id and the contract address`, {
      details: { collaborationId: collaborationId.toString(), contract },
    });
  }
  const { terms: raw, creator } = log.args;
  const terms: CollaborationTerms = { ...raw, parties: raw.parties.map((p) => ({ ...p })) };
  if (termsHash(terms) !== storedHash || log.args.termsHash !== storedHash) {
    throw new CollaborationReadError("COLLABORATION_TERMS_MISMATCH", `the terms the endpoint returned for collaboration ${collaborationId} do not hash to the stored terms hash; use another endpoint`, {
      details: { collaborationId: collaborationId.toString(), storedHash },
    });
  }
  return { collaborationId, creator, terms, termsHash: storedHash, blockNumber: log.blockNumber };
}
