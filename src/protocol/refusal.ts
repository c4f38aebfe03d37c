/**
 * The EIP-712 refusal an enclave signs when a task's own inputs make it
 * unrunnable, and TaskMarket.refuseTask checks on chain. Must match
 * REFUSAL_TYPEHASH in contracts/TaskMarket.sol; the domain is the
 * completion's (src/protocol/completion.ts).
 *
 * A refusal ends the task: the node keeps its deposit and is paid its price,
 * the requester gets the rest of the escrow. So the enclave signs one only
 * for a failure the requester caused and the host cannot have caused: bytes
 * the enclave has authenticated (by the spec's digests, or by the CIDs the
 * requester named, recomputed inside the enclave) that do not check out.
 */
import { hashTypedData, type Address, type Hex } from "viem";
import { completionDomain } from "./completion.ts";

export const refusalTypes = {
  Refusal: [
    { name: "taskId", type: "uint256" },
    { name: "specHash", type: "bytes32" },
    { name: "attempt", type: "uint8" },
    { name: "reason", type: "uint8" },
  ],
} as const;

/** Why a task cannot run, as the uint8 `reason` of a Refusal (0 is not a reason; the market rejects it). */
export const refusalReasons = {
  /** The bytes at the spec's envelope CID do not hash to its envelopeDigest. */
  ENVELOPE_DIGEST_MISMATCH: 1,
  /** The authenticated envelope does not parse as a task envelope. */
  MALFORMED_ENVELOPE: 2,
  /** The authenticated envelope names another task, program digest or input digest than the spec. */
  TASK_MISMATCH: 3,
  /** The bytes at the envelope's program CID do not hash to the spec's programDigest. */
  PROGRAM_DIGEST_MISMATCH: 4,
  /** The bytes at the envelope's input CID (or inline) do not hash to the spec's inputDigest. */
  INPUT_DIGEST_MISMATCH: 5,
  /** The data key wrapped to this enclave does not open, or none is wrapped to it although the spec names it. */
  KEY_UNWRAP_FAILED: 6,
  /** The authenticated input ciphertext does not decrypt with the unwrapped data key. */
  INPUT_DECRYPTION_FAILED: 7,
  /** The authenticated envelope's result key is not an X25519 public key. */
  RESULT_KEY_INVALID: 8,
} as const;

export type RefusalReason = keyof typeof refusalReasons;

export interface Refusal {
  taskId: bigint;
  /** taskSpecHash of the spec the enclave checked: a refusal made for another spec does not end this task. */
  specHash: Hex;
  /** The attempt refused: the task word's attempt counter when the enclave's operator accepted it. */
  attempt: number;
  reason: number;
}

/** The name of a reason code, or undefined for a code this version does not know. */
export function refusalReasonName(code: number): RefusalReason | undefined {
  return (Object.keys(refusalReasons) as RefusalReason[]).find((name) => refusalReasons[name] === code);
}

/** The digest an enclave signs to refuse `refusal` on the market at `market` of chain `chainId`. */
export function refusalDigest(chainId: bigint, market: Address, refusal: Refusal): Hex {
  return hashTypedData({ domain: completionDomain(chainId, market), types: refusalTypes, primaryType: "Refusal", message: refusal });
}
