import type { Address, Client, Hex } from "viem";
import { readContract } from "viem/actions";
import type { TeeType } from "../../attestation/types.ts";
import { enclaveRegistryAbi } from "../abi/EnclaveRegistry.ts";

const teeTypeNames: readonly TeeType[] = ["SGX", "TDX", "SEV-SNP"];

export interface EnclaveRecord {
  enclave: Address;
  /** Zero address when the enclave was never registered. */
  operator: Address;
  expiry: bigint;
  teeType: TeeType;
  simulated: boolean;
  revoked: boolean;
  hpkePublicKey: Hex;
  measurement: Hex;
  /** Registered, not revoked, unexpired at the latest block. */
  active: boolean;
}

export async function readEnclave(client: Client, registry: Address, enclave: Address): Promise<EnclaveRecord> {
  const [[operator, expiry, teeType, simulated, revoked, hpkePublicKey, measurement], active] = await Promise.all([
    readContract(client, { address: registry, abi: enclaveRegistryAbi, functionName: "enclaves", args: [enclave] }),
    readContract(client, { address: registry, abi: enclaveRegistryAbi, functionName: "isActive", args: [enclave] }),
  ]);
  const teeTypeName = teeTypeNames[teeType];
  if (teeTypeName === undefined) throw new RangeError(`registry returned unknown TEE type ${teeType} for ${enclave}`);
  return {
    enclave,
    operator,
    expiry,
    teeType: teeTypeName,
    simulated,
    revoked,
    hpkePublicKey,
    measurement,
    active,
  };
}
