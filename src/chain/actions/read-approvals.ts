import { decodeFunctionData, isAddressEqual, type Address, type BlockNumber, type Client, type Hex } from "viem";
import { getContractEvents, getTransaction } from "viem/actions";
import { collaborationsAbi } from "../abi/Collaborations.ts";

/** A party's standing approval as relayed on chain: the nonce and the EIP-712 signature an enclave can check itself. */
export interface RelayedApproval {
  party: Address;
  nonce: bigint;
  signature: Hex;
  transactionHash: Hex;
}

/**
 * The latest relayed approval of each of `parties` for `collaborationId`, taken from the calldata of the
 * transaction behind its `Approved` event (the event does not carry the signature). Null for a party
 * whose latest approval was withdrawn after it, that never approved, or whose approval was relayed by a
 * contract (not a direct `approve` call), whose calldata this cannot decode.
 */
export async function readApprovals(client: Client, contract: Address, collaborationId: bigint, parties: readonly Address[], fromBlock: BlockNumber = 0n): Promise<(RelayedApproval | null)[]> {
  const [approved, withdrawn] = await Promise.all([
    getContractEvents(client, { address: contract, abi: collaborationsAbi, eventName: "Approved", args: { collaborationId }, fromBlock, toBlock: "latest", strict: true }),
    getContractEvents(client, { address: contract, abi: collaborationsAbi, eventName: "ApprovalWithdrawn", args: { collaborationId }, fromBlock, toBlock: "latest", strict: true }),
  ]);
  return Promise.all(
    parties.map(async (party) => {
      const last = approved.filter((e) => isAddressEqual(e.args.party, party)).at(-1);
      if (!last) return null;
      if (withdrawn.some((w) => isAddressEqual(w.args.party, party) && w.args.nonce > last.args.nonce)) return null;
      const tx = await getTransaction(client, { hash: last.transactionHash });
      try {
        const call = decodeFunctionData({ abi: collaborationsAbi, data: tx.input });
        if (call.functionName !== "approve") return null;
        const [, signer, nonce, signature] = call.args;
        if (!isAddressEqual(signer, party) || nonce !== last.args.nonce) return null;
        return { party, nonce, signature, transactionHash: last.transactionHash };
      } catch {
        return null;
      }
    }),
  );
}
