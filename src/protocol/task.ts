/**
 * The task formats shared by the contracts, the SDK and the enclave.
 *
 * On chain a task is identified by `taskId` and stores one word: status,
 * attempt, attempt deadline and a commitment to its `TaskSpec` (and, once
 * accepted, its `Assignment`); spec and assignment travel in calldata and
 * events. Everything the
 * enclave needs beyond the spec (CIDs, wrapped data keys, the requester's
 * result key, limits) is in the `TaskEnvelope`, a JSON blob on IPFS whose
 * SHA-256 is `envelopeDigest` in the spec.
 */
import { encodeAbiParameters, keccak256, type Address, type Hex } from "viem";

/** Mirrors `struct TaskSpec` in contracts/TaskMarket.sol: what the requester asks for and escrows. */
export interface TaskSpec {
  /** The submitting account; the market checks it is the sender. */
  requester: Address;
  /** Payment token: the zero address for native currency, else an ERC-20. */
  token: Address;
  /** Escrowed at submit (uint96); the node is paid its offer price, the rest is refunded. */
  maxPrice: bigint;
  /** SHA-256 of the program bytes (its measurement). */
  programDigest: Hex;
  /** SHA-256 of the encrypted input blob. */
  inputDigest: Hex;
  /** SHA-256 of the task envelope blob. */
  envelopeDigest: Hex;
  /** CID of the task envelope on IPFS. */
  envelopeCid: string;
  /** Enclave signing addresses allowed to run the task; empty for open matching. */
  candidates: Address[];
  /** CPU the task needs, in thousandths of a core (uint32). */
  cpuMillis: number;
  /** Memory the task needs, MiB (uint32). */
  memoryMb: number;
  /** Execution time the task needs, seconds (uint32): an offer's maxDuration must cover it. */
  duration: number;
  /** Accepted TEE types, a bitmask of teeTypeBits (uint8, non-zero). */
  teeTypes: number;
  /** Time category 0..7 (uint8); the market holds each category's time reference. */
  category: number;
  /** An attempt's deadline is its accept time + the category's time reference x this (uint16, >= 1). */
  deadlineMultiple: number;
  /** Attempts before the task is refunded (uint8, >= 1). */
  maxAttempts: number;
}

/** TaskSpec.teeTypes bits. */
export const teeTypeBits = { SGX: 1, TDX: 2, "SEV-SNP": 4 } as const;
export const anyTeeType = 7;

/** Category ids of a fresh market, after iExec's XS..XL: 5 min, 20 min, 1 h, 3 h, 10 h (the admin may change them). */
export const defaultCategories = { XS: 0, S: 1, M: 2, L: 3, XL: 4 } as const;

export const taskSpecAbi = [
  {
    type: "tuple",
    components: [
      { name: "requester", type: "address" },
      { name: "token", type: "address" },
      { name: "maxPrice", type: "uint96" },
      { name: "programDigest", type: "bytes32" },
      { name: "inputDigest", type: "bytes32" },
      { name: "envelopeDigest", type: "bytes32" },
      { name: "envelopeCid", type: "string" },
      { name: "candidates", type: "address[]" },
      { name: "cpuMillis", type: "uint32" },
      { name: "memoryMb", type: "uint32" },
      { name: "duration", type: "uint32" },
      { name: "teeTypes", type: "uint8" },
      { name: "category", type: "uint8" },
      { name: "deadlineMultiple", type: "uint16" },
      { name: "maxAttempts", type: "uint8" },
    ],
  },
] as const;

/** keccak256(abi.encode(spec)), as the contract computes it. */
export function taskSpecHash(spec: TaskSpec): Hex {
  return keccak256(encodeAbiParameters(taskSpecAbi, [spec]));
}

/** Mirrors `struct Assignment`: who accepted an attempt and on which terms (from the TaskAccepted event). */
export interface Assignment {
  enclave: Address;
  operator: Address;
  /** The offer price the node is paid, in the task's token (uint96). */
  price: bigint;
  /** The operator's deposit, native currency (uint96). */
  deposit: bigint;
}

const assignmentCommitmentAbi = [
  { type: "bytes32" },
  {
    type: "tuple",
    components: [
      { name: "enclave", type: "address" },
      { name: "operator", type: "address" },
      { name: "price", type: "uint96" },
      { name: "deposit", type: "uint96" },
    ],
  },
] as const;

const commitmentMask = ((1n << 200n) - 1n) << 56n;

function commit(hash: Hex): Hex {
  return `0x${(BigInt(hash) & commitmentMask).toString(16).padStart(64, "0")}`;
}

/**
 * The commitment the market's task word holds (its top 200 bits): to the spec
 * while the task is open, to the spec and the assignment once accepted.
 */
export function taskCommitment(spec: TaskSpec, assignment?: Assignment): Hex {
  const specHash = taskSpecHash(spec);
  if (!assignment) return commit(specHash);
  return commit(keccak256(encodeAbiParameters(assignmentCommitmentAbi, [specHash, assignment])));
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
