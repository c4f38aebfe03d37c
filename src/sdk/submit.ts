/**
 * Preparing and submitting a task: the program and the encrypted input go to
 * IPFS, the input's data key is wrapped (HPKE) to every candidate enclave so
 * any of them can run it while the requester is offline, and the spec goes on
 * chain with its escrow.
 */
import { hexToBytes, sha256, toHex, type Address, type Hex } from "viem";
import { sealStream, generateDataKey } from "../crypto/aead-stream.ts";
import { generateHpkeKeyPair, sealTo, type HpkeKeyPair } from "../crypto/hpke.ts";
import { submitTask } from "../chain/actions/submit-task.ts";
import type { WriterClient } from "../chain/clients.ts";
import { taskInputAad, taskKeyInfo } from "../protocol/binding.ts";
import { computeTaskId, defaultTaskLimits, type TaskBinding, type TaskEnvelope, type TaskLimits, type TaskSpec } from "../protocol/task.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import type { VerifiedEnclave } from "./enclaves.ts";

export interface TaskRequest {
  program: Uint8Array;
  input: Uint8Array;
  candidates: VerifiedEnclave[];
  reward: bigint;
  /** Seconds from now until the task may be reclaimed. */
  deadlineSeconds: number;
  limits?: Partial<TaskLimits>;
}

/** Everything the requester needs later to verify and decrypt the result; keep the key private. */
export interface SubmittedTask {
  taskId: bigint;
  binding: TaskBinding;
  spec: TaskSpec;
  salt: Hex;
  resultKey: HpkeKeyPair;
  submitBlock: bigint;
  submitGas: bigint;
  transactionHash: Hex;
}

export async function prepareAndSubmit(
  ctx: { writer: WriterClient; market: Address; chainId: bigint; store: BlobStore },
  request: TaskRequest,
): Promise<SubmittedTask> {
  const salt = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const taskId = computeTaskId(ctx.chainId, ctx.market, ctx.writer.account.address, salt);
  const binding: TaskBinding = { chainId: ctx.chainId, market: ctx.market, taskId };

  const dataKey = generateDataKey();
  const resultKey = await generateHpkeKeyPair();
  try {
    const encryptedInput = sealStream(dataKey, request.input, { aad: taskInputAad(binding), label: "input ciphertext" });
    const info = taskKeyInfo(binding);
    const wrappedKeys = await Promise.all(
      request.candidates.map(async (c) => {
        const { enc, ciphertext } = await sealTo(hexToBytes(c.hpkePublicKey), dataKey, { info });
        return { enclave: c.signer, enc: toHex(enc), ciphertext: toHex(ciphertext) };
      }),
    );
    const [programCid, inputCid] = await Promise.all([ctx.store.put(request.program), ctx.store.put(encryptedInput)]);
    const envelope: TaskEnvelope = {
      version: 1,
      taskId: taskId.toString(),
      program: { cid: programCid, digest: sha256(request.program) },
      input: { cid: inputCid, digest: sha256(encryptedInput) },
      resultKey: toHex(resultKey.publicKey),
      wrappedKeys,
      limits: { ...defaultTaskLimits, ...request.limits },
    };
    const envelopeBytes = new TextEncoder().encode(JSON.stringify(envelope));
    const envelopeCid = await ctx.store.put(envelopeBytes);
    const latest = await ctx.writer.getBlock({ blockTag: "latest" });
    const spec: TaskSpec = {
      programDigest: envelope.program.digest,
      inputDigest: envelope.input.digest,
      envelopeDigest: sha256(envelopeBytes),
      envelopeCid,
      candidates: request.candidates.map((c) => c.signer),
      deadline: latest.timestamp + BigInt(request.deadlineSeconds),
    };
    const tx = await submitTask(ctx.writer, ctx.market, { spec, reward: request.reward, salt });
    return { taskId, binding, spec, salt, resultKey, submitBlock: tx.receipt.blockNumber, submitGas: tx.gasUsed, transactionHash: tx.hash };
  } finally {
    dataKey.fill(0);
  }
}

