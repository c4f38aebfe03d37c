/**
 * The task formats shared by the contracts, the SDK and the enclave.
 *
 * On chain a task is identified by `taskId` and stores one word: status,
 * attempt, attempt deadline and a commitment to its `TaskSpec` (and, once
 * accepted, its `Assignment`); spec and assignment travel in calldata and
 * events. Everything the
 * enclave needs beyond the spec (CIDs, wrapped data keys, the requester's
 * result key, limits, and a small encrypted input itself) is in the
 * `TaskEnvelope`, a JSON blob on IPFS whose SHA-256 is `envelopeDigest` in the
 * spec.
 */
import { encodeAbiParameters, type Address, type Hex } from "viem";
import { keccak256 } from "../crypto/keccak.ts";
import { z } from "zod";
import { addressSchema as address, hex32Schema as hex32, hexSchema as hex } from "./schemas.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

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

/**
 * What a task's program may use. Two time limits, because neither covers the
 * other: `cpuTimeMs` bounds the work (a node runs several tasks per core, so
 * a program's wall time depends on its neighbours), `timeoutMs` bounds the
 * time the node's slot is held (a program awaiting a promise that never
 * settles uses no CPU).
 */
export interface TaskLimits {
  /** Heap of the program's isolate, MiB (array buffers included). */
  memoryMb: number;
  /** CPU time the program's isolate may use, ms (isolated-vm's isolate.cpuTime; see docs/enclave.md). */
  cpuTimeMs: number;
  /** Wall time from the isolate's creation to the result, ms: the backstop. */
  timeoutMs: number;
  maxOutputBytes: number;
}

/** The default wall time is this multiple of the CPU time: room for a node running several tasks per core. */
export const wallTimePerCpuTime = 4;

/** Largest `timeoutMs` and `cpuTimeMs` an envelope may carry: one hour. */
export const maxTaskTimeMs = 3_600_000;

export const defaultTaskLimits: TaskLimits = { memoryMb: 64, cpuTimeMs: 5_000, timeoutMs: wallTimePerCpuTime * 5_000, maxOutputBytes: 1 << 20 };

/**
 * Fills in the limits a requester left out. A `timeoutMs` given alone keeps
 * its meaning from before `cpuTimeMs` existed (the program may run that long),
 * so it is also the CPU limit; a `cpuTimeMs` given alone gets
 * `wallTimePerCpuTime` times as much wall time (at most `maxTaskTimeMs`).
 * `defaults` are a policy manifest's (limits.task.defaults), else the protocol's.
 */
export function resolveTaskLimits(limits: Partial<TaskLimits> = {}, defaults: TaskLimits = defaultTaskLimits): TaskLimits {
  const { cpuTimeMs, timeoutMs } = limits;
  const time =
    cpuTimeMs === undefined
      ? { cpuTimeMs: timeoutMs ?? defaults.cpuTimeMs, timeoutMs: timeoutMs ?? defaults.timeoutMs }
      : { cpuTimeMs, timeoutMs: timeoutMs ?? Math.min(maxTaskTimeMs, wallTimePerCpuTime * cpuTimeMs) };
  return { ...defaults, ...limits, ...time };
}

/**
 * Encrypted inputs up to this size travel inside the envelope (`TaskInputRef`
 * `inline`, base64) instead of as a blob of their own: one IPFS upload, one
 * download and one stored block fewer per task, for at most 16 KiB (about
 * 21.3 KiB of base64) more envelope. The SDK inlines at or below it; parsers
 * refuse a larger inline input.
 */
export const maxInlineInputBytes = 16 * 1024;

/**
 * Where the encrypted input is: a blob on IPFS (`cid`), or inline in the
 * envelope as standard padded base64 (`inline`), never both. Either way
 * `digest` is SHA-256 of the encrypted input bytes and equals the spec's
 * `inputDigest`.
 */
export type TaskInputRef = { cid: string; digest: Hex } | { inline: string; digest: Hex };

export interface TaskEnvelope {
  version: 1;
  /** Decimal string of the task id. */
  taskId: string;
  program: { cid: string; digest: Hex };
  input: TaskInputRef;
  /** Requester's X25519 public key (hex) the result is encrypted to. */
  resultKey: Hex;
  wrappedKeys: WrappedKey[];
  limits: TaskLimits;
}

/** The encrypted input bytes an envelope carries inline. */
export function decodeInlineInput(input: { inline: string }): Uint8Array {
  return new Uint8Array(Buffer.from(input.inline, "base64"));
}

/** The inline form of an encrypted input (standard padded base64). */
export function inlineInputRef(encryptedInput: Uint8Array, digest: Hex): TaskInputRef {
  return { inline: Buffer.from(encryptedInput.buffer, encryptedInput.byteOffset, encryptedInput.byteLength).toString("base64"), digest };
}

/** A task envelope blob that is not UTF-8 JSON of the TaskEnvelope shape. */
export class TaskEnvelopeError extends CloisterError<"MALFORMED_ENVELOPE"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("MALFORMED_ENVELOPE", message, options);
  }
}


/** Longest base64 text of maxInlineInputBytes bytes: checked before decoding, so a huge string is never decoded. */
const maxInlineBase64Chars = 4 * Math.ceil(maxInlineInputBytes / 3);

/** Standard padded base64 exactly as Buffer writes it: re-encoding the decoded bytes gives the same text. */
function isCanonicalBase64(text: string): boolean {
  return Buffer.from(text, "base64").toString("base64") === text;
}

const inlineInput = z
  .string()
  .min(1, "must not be empty")
  .max(maxInlineBase64Chars, `must encode at most ${maxInlineInputBytes} bytes`)
  .refine(isCanonicalBase64, "must be standard padded base64 (A-Z a-z 0-9 + /, '=' padding, no whitespace)")
  .refine((text) => Buffer.byteLength(text, "base64") <= maxInlineInputBytes, `must encode at most ${maxInlineInputBytes} bytes`);

const inputRefSchema = z
  .object({ cid: z.string().min(1).optional(), inline: inlineInput.optional(), digest: hex32 })
  .strict()
  .refine((input) => (input.cid === undefined) !== (input.inline === undefined), "must have exactly one of cid and inline");

const envelopeSchema = z.object({
  version: z.literal(1),
  taskId: z.string().regex(/^[0-9]+$/),
  program: z.object({ cid: z.string(), digest: hex32 }),
  input: inputRefSchema,
  resultKey: hex,
  wrappedKeys: z.array(z.object({ enclave: address, enc: hex, ciphertext: hex })),
  // An envelope written before cpuTimeMs existed parses with cpuTimeMs = timeoutMs, the limit it was run under then.
  limits: z
    .object({
      memoryMb: z.number().int().positive().max(4096),
      cpuTimeMs: z.number().int().positive().max(maxTaskTimeMs).optional(),
      timeoutMs: z.number().int().positive().max(maxTaskTimeMs),
      maxOutputBytes: z.number().int().nonnegative().max(1 << 30),
    })
    .transform((limits) => ({ ...limits, cpuTimeMs: limits.cpuTimeMs ?? limits.timeoutMs })),
});

/**
 * Parses a task envelope blob: UTF-8 JSON of the TaskEnvelope shape, its input
 * either a CID or well-formed inline base64 of at most maxInlineInputBytes.
 * Throws TaskEnvelopeError naming the first problem. Checks shape only: digests
 * against the spec are the enclave's to check.
 */
export function parseTaskEnvelope(bytes: Uint8Array): TaskEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new TaskEnvelopeError("task envelope is not UTF-8 JSON", { cause });
  }
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TaskEnvelopeError(`task envelope is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data as TaskEnvelope;
}
