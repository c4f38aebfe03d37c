/**
 * The call gate: the only interface between the untrusted host and the
 * enclave process. Every request and response is a typed message validated by
 * these schemas on both sides (the enclave validates requests, the client
 * validates responses). Frames travel over Node's IPC channel with "advanced"
 * serialization, so Uint8Array and bigint cross as themselves.
 *
 * Frames: host -> enclave `{ id, method, params }`;
 *         enclave -> host `{ id, result }` or `{ id, error: { code, message } }`.
 * Nothing in a response may hold a secret: results are ciphertext for the
 * requester, public keys, signatures, digests and evidence.
 */
import { z } from "zod";
import { dcapCollateralSchema } from "../attestation/evidence-codec.ts";
import { addressSchema as address, hex32Schema as hex32T, hexSchema as hexT } from "../protocol/schemas.ts";

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be a Uint8Array");
const teeType = z.enum(["SGX", "TDX", "SEV-SNP"]);

/**
 * Which attestation provider the enclave uses. `sim` needs the simulated
 * platform directory (vendor PKI and the simulated sealing root); other
 * providers take their own options.
 */
export const attestationConfigSchema = z.union([
  z.object({ provider: z.literal("sim"), pkiDir: z.string().min(1) }).catchall(z.unknown()),
  z.object({ provider: z.string().min(1), pkiDir: z.string().optional() }).catchall(z.unknown()),
]);
export type AttestationConfig = z.infer<typeof attestationConfigSchema>;

export const initParamsSchema = z.object({ dataDir: z.string().min(1), attestation: attestationConfigSchema }).strict();
export const initResultSchema = z
  .object({
    /** The enclave's signing address: its on-chain identity. */
    signer: address,
    /** Raw X25519 public key, hex: data keys are wrapped to it. */
    hpkePublicKey: hex32T,
    /** Lowercase hex. */
    measurement: z.string().regex(/^[0-9a-f]+$/),
    teeType,
    simulated: z.boolean(),
  })
  .strict();

/** `operator`: the host account the evidence is for; report_data commits to it. */
export const attestParamsSchema = z.object({ freshness: hex32T.optional(), operator: address }).strict();

export const evidenceSchema = z.union([
  z.object({ teeType: z.enum(["SGX", "TDX"]), quote: bytes, collateral: dcapCollateralSchema.optional() }).strict(),
  z.object({ teeType: z.literal("SEV-SNP"), report: bytes, collateral: z.object({ vcek: bytes, chainPem: z.string() }).strict() }).strict(),
]);
export const attestResultSchema = z.object({ evidence: evidenceSchema, reportData: hexT }).strict();

const uint = (bits: number) => z.number().int().nonnegative().max(2 ** bits - 1);
const uint256 = z.bigint().nonnegative().lt(1n << 256n);

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

export const runTaskParamsSchema = z
  .object({
    binding: z.object({ chainId: uint256, market: address, taskId: uint256 }).strict(),
    spec: taskSpecSchema,
    /** The task envelope blob (JSON) as fetched from IPFS. */
    envelope: bytes,
    /** The program blob (JS module source, UTF-8). */
    program: bytes,
    /** The encrypted input blob. */
    input: bytes,
    /** CID of this enclave's published evidence, recorded in provenance. */
    evidenceCid: z.string(),
  })
  .strict();
export const runTaskResultSchema = z
  .object({
    /** Result blob encrypted to the requester (upload as is). */
    result: bytes,
    /** SHA-256 of `result`. */
    outputDigest: hex32T,
    /** DSSE envelope (canonical JSON) of the provenance statement. */
    provenance: bytes,
    /** SHA-256 of `provenance`. */
    provenanceDigest: hex32T,
    /** CID of `result` in the fixed profile (src/storage/unixfs-profile.ts): the host's put must return it. */
    outputCid: z.string(),
    /** CID of `provenance`, likewise. */
    provenanceCid: z.string(),
    /** EIP-712 signature over the Completion (digests and CIDs) for completeTask. (No outcome: whether the program failed is the requester's to know.) */
    signature: hexT,
  })
  .strict();

/** runTask's params and the attempt the node holds: the enclave signs a refusal only if the task cannot run. */
export const refuseTaskParamsSchema = runTaskParamsSchema.extend({ attempt: uint(8) }).strict();
export const refuseTaskResultSchema = z
  .object({
    /** The Refusal's reason code (src/protocol/refusal.ts). */
    reason: uint(8),
    /** The enclave error that made the task fail, for the node's log. */
    failure: z.object({ code: z.string(), message: z.string() }).strict(),
    /** EIP-712 signature over the Refusal for refuseTask. */
    signature: hexT,
  })
  .strict();

export const gateMethods = {
  init: { params: initParamsSchema, result: initResultSchema },
  attest: { params: attestParamsSchema, result: attestResultSchema },
  runTask: { params: runTaskParamsSchema, result: runTaskResultSchema },
  refuseTask: { params: refuseTaskParamsSchema, result: refuseTaskResultSchema },
} as const;

export type GateMethod = keyof typeof gateMethods;
export type GateParams<M extends GateMethod> = z.infer<(typeof gateMethods)[M]["params"]>;
export type GateResult<M extends GateMethod> = z.infer<(typeof gateMethods)[M]["result"]>;
export type InitParams = GateParams<"init">;
export type EnclaveIdentity = GateResult<"init">;
export type AttestParams = GateParams<"attest">;
export type AttestResult = GateResult<"attest">;
export type RunTaskParams = GateParams<"runTask">;
export type RunTaskResult = GateResult<"runTask">;
export type RefuseTaskParams = GateParams<"refuseTask">;
export type RefuseTaskResult = GateResult<"refuseTask">;

export const requestFrameSchema = z
  .object({ id: z.number().int().nonnegative(), method: z.enum(["init", "attest", "runTask", "refuseTask"]), params: z.unknown() })
  .strict();
export type RequestFrame = z.infer<typeof requestFrameSchema>;

export const gateErrorSchema = z.object({ code: z.string(), message: z.string() }).strict();
export const responseFrameSchema = z.union([
  z.object({ id: z.number().int().nonnegative(), result: z.unknown() }).strict(),
  z.object({ id: z.number().int().nonnegative(), error: gateErrorSchema }).strict(),
]);
export type ResponseFrame = z.infer<typeof responseFrameSchema>;

/** Validates a frame's payload against its method's schema; returns the message of the first problem on failure. */
export function checkPayload<M extends GateMethod, K extends "params" | "result">(
  method: M,
  kind: K,
  value: unknown,
): { ok: true; value: z.infer<(typeof gateMethods)[M][K]> } | { ok: false; problem: string } {
  const parsed = gateMethods[method][kind].safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data as z.infer<(typeof gateMethods)[M][K]> };
  const issue = parsed.error.issues[0];
  return { ok: false, problem: `${method} ${kind}: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}` };
}
