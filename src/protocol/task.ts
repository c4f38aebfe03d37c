/**
 * The task formats shared by the contracts, the SDK and the enclave.
 *
 * On chain a task is identified by `taskId` and stores only the hash of its
 * `TaskSpec`; the spec itself travels in calldata and events. Everything the
 * enclave needs beyond the spec (CIDs, wrapped data keys, the requester's
 * result key, limits) is in the `TaskEnvelope`, a JSON blob on IPFS whose
 * SHA-256 is `envelopeDigest` in the spec.
 */
import { encodeAbiParameters, keccak256, type Address, type Hex } from "viem";

/** Mirrors `struct TaskSpec` in contracts/TaskMarket.sol. */
export interface TaskSpec {
  /** SHA-256 of the program bytes (its measurement). */
  programDigest: Hex;
  /** SHA-256 of the encrypted input blob. */
  inputDigest: Hex;
  /** SHA-256 of the task envelope blob. */
  envelopeDigest: Hex;
  /** CID of the task envelope on IPFS. */
  envelopeCid: string;
  /** Enclave signing addresses allowed to run the task. */
  candidates: Address[];
  /** Unix seconds after which the task may be reopened or refunded. */
  deadline: bigint;
}

export const taskSpecAbi = [
  {
    type: "tuple",
    components: [
      { name: "programDigest", type: "bytes32" },
      { name: "inputDigest", type: "bytes32" },
      { name: "envelopeDigest", type: "bytes32" },
      { name: "envelopeCid", type: "string" },
      { name: "candidates", type: "address[]" },
      { name: "deadline", type: "uint64" },
    ],
  },
] as const;

/** keccak256(abi.encode(spec)), as the contract computes it. */
export function taskSpecHash(spec: TaskSpec): Hex {
  return keccak256(encodeAbiParameters(taskSpecAbi, [spec]));
}

/** The task id the market assigns: keccak256(abi.encode(chainId, market, requester, salt)). */
export function computeTaskId(chainId: bigint, market: Address, requester: Address, salt: Hex): bigint {
  return BigInt(
    keccak256(
      encodeAbiParameters(
        [{ type: "uint256" }, { type: "address" }, { type: "address" }, { type: "bytes32" }],
        [chainId, market, requester, salt],
      ),
    ),
  );
}

/** Where a task's key material is bound: HPKE info and AAD are derived from it. */
export interface TaskBinding {
  chainId: bigint;
  market: Address;
  taskId: bigint;
}

export interface WrappedKey {
  /** Enclave signing address the key is wrapped to. */
  enclave: Address;
  /** HPKE encapsulated key, hex. */
  enc: Hex;
  /** HPKE ciphertext of the 32-byte data key, hex. */
  ciphertext: Hex;
}

export interface TaskLimits {
  memoryMb: number;
  timeoutMs: number;
  maxOutputBytes: number;
}

export const defaultTaskLimits: TaskLimits = { memoryMb: 64, timeoutMs: 5_000, maxOutputBytes: 1 << 20 };

export interface TaskEnvelope {
  version: 1;
  /** Decimal string of the task id. */
  taskId: string;
  program: { cid: string; digest: Hex };
  input: { cid: string; digest: Hex };
  /** Requester's X25519 public key (hex) the result is encrypted to. */
  resultKey: Hex;
  wrappedKeys: WrappedKey[];
  limits: TaskLimits;
}
