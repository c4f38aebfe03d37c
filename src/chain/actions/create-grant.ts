import { parseEventLogs, toHex, type Address, type Hex } from "viem";
import type { GrantTerms } from "../../protocol/grants.ts";
import { grantsAbi } from "../abi/Grants.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export type CreatedGrant = TxResult & { grantId: bigint; salt: Hex };

function randomSalt(): Hex {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

function createdId(tx: TxResult, contract: Address): bigint {
  const [event] = parseEventLogs({ abi: grantsAbi, logs: tx.receipt.logs, eventName: "GrantCreated" });
  if (!event) throw new RangeError(`transaction ${tx.hash} emitted no GrantCreated event; is ${contract} a Grants contract?`);
  return event.args.grantId;
}

/** The client's account, `terms.owner`, creates a grant. Its id equals grantId(chainId, contract, owner, salt). */
export async function createGrant(client: WriterClient, contract: Address, terms: GrantTerms, salt: Hex = randomSalt()): Promise<CreatedGrant> {
  const tx = await writeContractTransaction(client, "createGrant", { address: contract, abi: grantsAbi, functionName: "createGrant", args: [terms, salt] });
  return { ...tx, grantId: createdId(tx, contract), salt };
}

/** Relays a grant `terms.owner` signed (EIP-712 Grant over the terms and `salt`, src/protocol/grants.ts). */
export async function createGrantBySig(client: WriterClient, contract: Address, terms: GrantTerms, salt: Hex, signature: Hex): Promise<CreatedGrant> {
  const tx = await writeContractTransaction(client, "createGrantBySig", {
    address: contract,
    abi: grantsAbi,
    functionName: "createGrantBySig",
    args: [terms, salt, signature],
  });
  return { ...tx, grantId: createdId(tx, contract), salt };
}
