import { hexToBytes, sha256, toHex, type Address, type Hex } from "viem";
import type { TeeType } from "../../attestation/types.ts";
import { enclaveRegistryAbi } from "../abi/EnclaveRegistry.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** TEE type codes as EnclaveRegistry stores them. */
export const teeTypeCodes: Record<TeeType, number> = { SGX: 0, TDX: 1, "SEV-SNP": 2 };

export interface EnclaveRegistration {
  /** The enclave's signing address: its on-chain identity. */
  enclave: Address;
  /** The host account allowed to accept tasks with this enclave. */
  operator: Address;
  /** X25519 public key, 32 bytes. */
  hpkePublicKey: Hex;
  teeType: TeeType;
  simulated: boolean;
  /** 32 bytes; see onChainMeasurement for longer measurements. */
  measurement: Hex;
  /** Unix seconds. */
  expiry: bigint;
  evidenceCid: string;
}

/**
 * The 32-byte measurement the registry stores: 32-byte measurements (MRENCLAVE,
 * a program's SHA-256) as is, 48-byte ones (TDX MRTD, SEV-SNP) as their SHA-256.
 */
export function onChainMeasurement(measurement: Uint8Array | Hex): Hex {
  const bytes = typeof measurement === "string" ? hexToBytes(measurement) : measurement;
  if (bytes.length === 32) return toHex(bytes);
  if (bytes.length === 48) return sha256(bytes);
  throw new RangeError(`a measurement is 32 or 48 bytes, got ${bytes.length}`);
}

/** Registers (or renews) an enclave; the client's account needs ATTESTER_ROLE. */
export function registerEnclave(client: WriterClient, registry: Address, registration: EnclaveRegistration): Promise<TxResult> {
  const { teeType, ...rest } = registration;
  return writeContractTransaction(client, "registerEnclave", {
    address: registry,
    abi: enclaveRegistryAbi,
    functionName: "register",
    args: [{ ...rest, teeType: teeTypeCodes[teeType] }],
  });
}
