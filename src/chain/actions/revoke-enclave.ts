import type { Address } from "viem";
import { enclaveRegistryAbi } from "../abi/EnclaveRegistry.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** Revokes an enclave for good; the client's account needs ATTESTER_ROLE. */
export function revokeEnclave(client: WriterClient, registry: Address, enclave: Address): Promise<TxResult> {
  return writeContractTransaction(client, "revokeEnclave", {
    address: registry,
    abi: enclaveRegistryAbi,
    functionName: "revoke",
    args: [enclave],
  });
}
