/**
 * Each job kind's parameters and kind-specific results as they cross the call
 * gate: schemas only, imported by both sides (call-gate.ts), so that the host
 * validates what it sends and the enclave what it receives without the host
 * loading any job's code. A new kind adds its schemas here and its module
 * beside this file (registry.ts).
 */
import { z } from "zod";
import { addressSchema as address, hex32Schema as hex32T } from "../../protocol/schemas.ts";
import { sealedDatasetSchema, signedGrantSchema } from "../../protocol/operate.ts";
import { recordedAnswerSchema } from "../chain-view/recorded.ts";

export const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be a Uint8Array");
export const uint = (bits: number) => z.number().int().nonnegative().max(2 ** bits - 1);
export const uint256 = z.bigint().nonnegative().lt(1n << 256n);

/** Mirrors TaskSpec in src/protocol/task.ts (the market's struct). */
export const taskSpecSchema = z
  .object({
    requester: address,
    token: address,
    maxPrice: z.bigint().nonnegative(),
    programDigest: hex32T,
    inputDigest: hex32T,
    envelopeDigest: hex32T,
    envelopeCid: z.string(),
    candidates: z.array(address),
    cpuMillis: uint(32),
    memoryMb: uint(32),
    duration: uint(32),
    teeTypes: uint(8),
    category: uint(8),
    deadlineMultiple: uint(16),
    maxAttempts: uint(8),
  })
  .strict();

/** A marketplace task: the on-chain spec and the blobs the host fetched for it. The job id is the task id. */
export const taskJobParamsSchema = z
  .object({
    binding: z.object({ chainId: uint256, market: address, taskId: uint256 }).strict(),
    spec: taskSpecSchema,
    /** The task envelope blob (JSON) as fetched from IPFS. */
    envelope: bytes,
    /** The program blob (JS module source or WASM). */
    program: bytes,
    /** The encrypted input blob. */
    input: bytes,
  })
  .strict();
export type TaskJobParams = z.infer<typeof taskJobParamsSchema>;

/**
 * A pipeline run (issue 14): the pipeline's binding, the chain state the host read (the registered digest and
 * the cursor the last run left), the package and the sealed cursor state fetched from IPFS (null before the
 * first run). The job id is the run id (pipelineRunId of the pipeline and cursor).
 */
export const pipelineJobParamsSchema = z
  .object({
    binding: z.object({ chainId: uint256, contract: address, pipelineId: uint256 }).strict(),
    chain: z.object({ pipelineDigest: hex32T, cursor: hex32T }).strict(),
    package: bytes,
    cursorState: bytes.nullable(),
  })
  .strict();
export type PipelineJobParams = z.infer<typeof pipelineJobParamsSchema>;

/**
 * A granted manipulation (jobs/operate.ts): the owner's signed grant, the dataset the owner sealed to this
 * enclave, the statement the operator wants run, and the chain answers the host recorded for the enclave's
 * proofs (chain-view/recorded.ts). The job id is the grant id; the run id follows from the proved use count.
 */
export const operateJobParamsSchema = z
  .object({
    binding: z.object({ chainId: uint256, grants: address, grantId: uint256 }).strict(),
    grant: signedGrantSchema,
    dataset: sealedDatasetSchema,
    statement: z.string().min(1).max(1 << 20),
    chain: z.array(recordedAnswerSchema).max(64),
    /** The operator's X25519 public key for a granted read's rows (they go to nobody else); unused by writes. */
    resultKey: hex32T.optional(),
  })
  .strict();
export type OperateJobParams = z.infer<typeof operateJobParamsSchema>;
