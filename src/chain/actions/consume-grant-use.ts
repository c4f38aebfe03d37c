import type { Address, Hex } from "viem";
import { grantsAbi } from "../abi/Grants.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface GrantUse {
  grantId: bigint;
  /** The run's id (bytes32): a use is recorded once per run id and grant. */
  runId: Hex;
  provenanceDigest: Hex;
  /** The enclave's EIP-712 Use over the three above (src/protocol/grants.ts useDigest). */
  signature: Hex;
}

/** Records one use of a grant, signed by an active enclave of the grant's operator. */
export function consumeGrantUse(client: WriterClient, contract: Address, use: GrantUse): Promise<TxResult> {
  return writeContractTransaction(client, "consumeUse", {
    address: contract,
    abi: grantsAbi,
    functionName: "consumeUse",
    args: [use.grantId, use.runId, use.provenanceDigest, use.signature],
  });
}
