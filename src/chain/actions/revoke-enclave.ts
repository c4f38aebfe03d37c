import type { Address } from "viem";
import { enclaveRegistryAbi } from "../abi/EnclaveRegistry.ts";
import type { WriterClient } from "../clients.ts";
import { sendContractTransaction, type TxResult } from "./send-transaction.ts";

/** Revokes an enclave for good; the client's account needs ATTESTER_ROLE. */
export function revokeEnclave(client: WriterClient, registry: Address, enclave: Address): Promise<TxResult> {
  return sendContractTransaction(client, "revokeEnclave", async () => {
    const { request } = await client.simulateContract({
      address: registry,
      abi: enclaveRegistryAbi,
      functionName: "revoke",
      args: [enclave],
    });
    return client.writeContract(request);
  });
}
