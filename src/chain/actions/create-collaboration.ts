import { parseEventLogs, toHex, type Address, type Hex } from "viem";
import type { CollaborationTerms } from "../../protocol/collaboration.ts";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/**
 * Creates a collaboration with fixed terms. The id equals
 * collaborationId(chainId, contract, creator, salt) (src/protocol/collaboration.ts).
 */
export async function createCollaboration(
  client: WriterClient,
  contract: Address,
  terms: CollaborationTerms,
  salt: Hex = toHex(crypto.getRandomValues(new Uint8Array(32))),
): Promise<TxResult & { collaborationId: bigint; termsHash: Hex; salt: Hex }> {
  const tx = await writeContractTransaction(client, "createCollaboration", {
    address: contract,
    abi: collaborationsAbi,
    functionName: "createCollaboration",
    args: [terms, salt],
  });
  const [event] = parseEventLogs({ abi: collaborationsAbi, logs: tx.receipt.logs, eventName: "CollaborationCreated" });
  if (!event) throw new RangeError(`createCollaboration transaction ${tx.hash} emitted no CollaborationCreated event; is ${contract} a Collaborations contract?`);
  return { ...tx, collaborationId: event.args.collaborationId, termsHash: event.args.termsHash, salt };
}
