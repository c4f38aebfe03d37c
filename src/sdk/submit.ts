/**
 * Preparing and submitting a task, in three steps: `prepareTask` encrypts the
 * input under a fresh data key and wraps that key (HPKE, bound to chain,
 * market and task id) to every candidate enclave, so any of them can run it
 * while the requester is offline; `publishTask` puts program, ciphertext and
 * envelope on IPFS (a ciphertext of at most maxInlineInputBytes travels inside
 * the envelope instead) and builds the spec with the market terms (maximum price,
 * token, requirements, time category, attempts); `submitPublished` escrows
 * the maximum price on chain (approving the market first for an ERC-20);
 * `submitPublishedBatch` does so for many tasks in one transaction.
 */
import { hexToBytes, toHex, zeroAddress, type Address, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { generateDataKey, sealStream } from "../crypto/aead-stream.ts";
import { generateHpkeKeyPair, sealTo, type HpkeKeyPair } from "../crypto/hpke.ts";
import { submitTask } from "../chain/actions/submit-task.ts";
import { submitTasks } from "../chain/actions/submit-tasks.ts";
import { sendTaskBatch } from "../chain/task-batch.ts";
import type { ItemOutcome } from "../util/group-commit.ts";
import { approveToken, readAllowance } from "../chain/actions/token.ts";
import type { WriterClient } from "../chain/clients.ts";
import { taskInputAad, taskKeyInfo } from "../protocol/binding.ts";
import {
  anyTeeType,
  computeTaskId,
  defaultCategories,
  inlineInputRef,
  maxInlineInputBytes,
  resolveTaskLimits,
  type TaskBinding,
  type TaskEnvelope,
  type TaskInputRef,
  type TaskLimits,
  type TaskSpec,
  type WrappedKey,
} from "../protocol/task.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { VerifiedEnclave } from "./enclaves.ts";

export interface SubmitContext {
  writer: WriterClient;
  market: Address;
  chainId: bigint;
  store: BlobStore;
}

export interface TaskRequest {
  program: Uint8Array;
  input: Uint8Array;
  candidates: VerifiedEnclave[];
  limits?: Partial<TaskLimits>;
}

/** What the requester offers and requires on the market; see TaskSpec for units. */
export interface TaskTerms {
  /** Escrowed; the node is paid its offer price and the rest comes back. */
  maxPrice: bigint;
  /** Zero address: native currency; else an ERC-20 the market may pull (submitPublished approves it). */
  token: Address;
  /** Time category id (0..7); each attempt has category time reference x deadlineMultiple seconds. */
  category: number;
  deadlineMultiple: number;
  /** Nodes that may try in turn before the escrow is refunded. */
  maxAttempts: number;
  cpuMillis: number;
  /** Defaults to limits.memoryMb. */
  memoryMb: number;
  /** Execution seconds; defaults to limits.timeoutMs (the wall-time limit, the longest the task can hold a node) rounded up. */
  duration: number;
  /** Bitmask of teeTypeBits. */
  teeTypes: number;
}

/** publishTask's defaults: 0.01 ether, category XS (5 minutes per attempt), up to 3 attempts, one core, any TEE type. CloisterClient.runTask escrows its candidates' asked price instead. */
export const defaultTaskTerms = {
  maxPrice: 10n ** 16n,
  token: zeroAddress,
  category: defaultCategories.XS,
  deadlineMultiple: 1,
  maxAttempts: 3,
  cpuMillis: 1000,
  teeTypes: anyTeeType,
} as const satisfies Partial<TaskTerms>;

/** A task ready to publish: nothing has left the requester yet. */
export interface PreparedTask {
  taskId: bigint;
  salt: Hex;
  binding: TaskBinding;
  /** Keep private: it decrypts the result. */
  resultKey: HpkeKeyPair;
  program: Uint8Array;
  encryptedInput: Uint8Array;
  wrappedKeys: WrappedKey[];
  candidates: Address[];
  limits: TaskLimits;
}

export interface PublishedTask extends PreparedTask {
  envelope: TaskEnvelope;
  spec: TaskSpec;
}

/** Everything the requester needs later to verify and decrypt the result. */
export interface SubmittedTask extends PublishedTask {
  submitBlock: bigint;
  submitGas: bigint;
  transactionHash: Hex;
}

export async function prepareTask(ctx: Pick<SubmitContext, "writer" | "market" | "chainId">, request: TaskRequest): Promise<PreparedTask> {
  const salt = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const taskId = computeTaskId(ctx.chainId, ctx.market, ctx.writer.account.address, salt);
  const binding: TaskBinding = { chainId: ctx.chainId, market: ctx.market, taskId };
  const dataKey = generateDataKey();
  try {
    const encryptedInput = sealStream(dataKey, request.input, { aad: taskInputAad(binding), label: "input ciphertext" });
    const resultKey = await generateHpkeKeyPair();
    const info = taskKeyInfo(binding, { programDigest: sha256(request.program), resultKey: resultKey.publicKey });
    const wrappedKeys = await Promise.all(
      request.candidates.map(async (c) => {
        const { enc, ciphertext } = await sealTo(hexToBytes(c.hpkePublicKey), dataKey, { info });
        return { enclave: c.signer, enc: toHex(enc), ciphertext: toHex(ciphertext) };
      }),
    );
    return {
      taskId,
      salt,
      binding,
      resultKey,
      program: request.program,
      encryptedInput,
      wrappedKeys,
      candidates: request.candidates.map((c) => c.signer),
      limits: resolveTaskLimits(request.limits),
    };
  } finally {
    dataKey.fill(0);
  }
}

export interface PublishContext extends Pick<SubmitContext, "writer" | "store"> {
  /**
   * CIDs of programs this client already put on the store, by sha256 digest: a program that repeats across
   * tasks is uploaded once. Filled in as programs are uploaded.
   */
  uploadedPrograms?: Map<Hex, string>;
  /** Encrypted inputs up to this size go inline in the envelope (a manifest's limits.task.inlineInputBytes; default and at most maxInlineInputBytes). */
  inlineInputBytes?: number;
}

async function programCidOf(ctx: PublishContext, program: Uint8Array, digest: Hex): Promise<string> {
  const known = ctx.uploadedPrograms?.get(digest);
  if (known !== undefined) return known;
  const cid = await ctx.store.put(program);
  ctx.uploadedPrograms?.set(digest, cid);
  return cid;
}

/** The encrypted input inline in the envelope when it is at most the inline size, else uploaded and named by CID. */
async function inputRefOf(ctx: PublishContext, encryptedInput: Uint8Array): Promise<TaskInputRef> {
  const digest = sha256(encryptedInput);
  if (encryptedInput.length <= Math.min(ctx.inlineInputBytes ?? maxInlineInputBytes, maxInlineInputBytes)) return inlineInputRef(encryptedInput, digest);
  return { cid: await ctx.store.put(encryptedInput), digest };
}

export async function publishTask(ctx: PublishContext, task: PreparedTask, terms: Partial<TaskTerms> = {}): Promise<PublishedTask> {
  const programDigest = sha256(task.program);
  const [programCid, input] = await Promise.all([programCidOf(ctx, task.program, programDigest), inputRefOf(ctx, task.encryptedInput)]);
  const envelope: TaskEnvelope = {
    version: 1,
    taskId: task.taskId.toString(),
    program: { cid: programCid, digest: programDigest },
    input,
    resultKey: toHex(task.resultKey.publicKey),
    wrappedKeys: task.wrappedKeys,
    limits: task.limits,
  };
  const envelopeBytes = new TextEncoder().encode(JSON.stringify(envelope));
  const envelopeCid = await ctx.store.put(envelopeBytes);
  const t = { ...defaultTaskTerms, memoryMb: task.limits.memoryMb, duration: Math.ceil(task.limits.timeoutMs / 1000), ...terms };
  const spec: TaskSpec = {
    requester: ctx.writer.account.address,
    token: t.token,
    maxPrice: t.maxPrice,
    programDigest: envelope.program.digest,
    inputDigest: envelope.input.digest,
    envelopeDigest: sha256(envelopeBytes),
    envelopeCid,
    candidates: task.candidates,
    cpuMillis: t.cpuMillis,
    memoryMb: t.memoryMb,
    duration: t.duration,
    teeTypes: t.teeTypes,
    category: t.category,
    deadlineMultiple: t.deadlineMultiple,
    maxAttempts: t.maxAttempts,
  };
  return { ...task, envelope, spec };
}

/** Approves the market for `amount` of `token` when its allowance is short. */
async function ensureAllowance(ctx: Pick<SubmitContext, "writer" | "market">, token: Address, amount: bigint): Promise<void> {
  if ((await readAllowance(ctx.writer, token, ctx.writer.account.address, ctx.market)) < amount) {
    await approveToken(ctx.writer, token, ctx.market, amount);
  }
}

/** Escrows spec.maxPrice and submits; for an ERC-20 it first approves the market when the allowance is short. */
export async function submitPublished(ctx: Pick<SubmitContext, "writer" | "market">, task: PublishedTask): Promise<SubmittedTask> {
  const { token, maxPrice } = task.spec;
  if (token !== zeroAddress) await ensureAllowance(ctx, token, maxPrice);
  const tx = await submitTask(ctx.writer, ctx.market, { spec: task.spec, salt: task.salt });
  return { ...task, submitBlock: tx.receipt.blockNumber, submitGas: tx.gasUsed, transactionHash: tx.hash };
}

/**
 * Submits several published tasks in one submitTasks transaction (the ERC-20 allowances they need are
 * approved first), one outcome per task in order. A task the market refuses fails alone; see sendTaskBatch.
 * submitGas is then the whole transaction's, shared by the batch.
 */
export async function submitPublishedBatch(ctx: Pick<SubmitContext, "writer" | "market">, tasks: readonly PublishedTask[]): Promise<ItemOutcome<SubmittedTask>[]> {
  const owedByToken = new Map<Address, bigint>();
  for (const { spec } of tasks) if (spec.token !== zeroAddress) owedByToken.set(spec.token, (owedByToken.get(spec.token) ?? 0n) + spec.maxPrice);
  for (const [token, amount] of owedByToken) await ensureAllowance(ctx, token, amount);
  return sendTaskBatch(tasks, {
    taskIdOf: (task) => task.taskId,
    sendOne: (task) => submitPublished(ctx, task),
    sendBatch: async (batch) => {
      const tx = await submitTasks(ctx.writer, ctx.market, { items: batch.map((task) => ({ spec: task.spec, salt: task.salt })) });
      return batch.map((task) => ({ ok: true as const, value: { ...task, submitBlock: tx.receipt.blockNumber, submitGas: tx.gasUsed, transactionHash: tx.hash } }));
    },
  });
}
