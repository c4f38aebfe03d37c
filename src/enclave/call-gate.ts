/**
 * The call gate: the only interface between the untrusted host and the
 * enclave process. Every request and response is a typed message validated by
 * these schemas on both sides (the enclave validates requests, the client
 * validates responses). Frames travel over Node's IPC channel with "advanced"
 * serialization, so Uint8Array and bigint cross as themselves.
 *
 * Methods: init, attest, and the job seam: runJob `{ kind, params, evidenceCid }`
 * for every kind of work (one outcome shape), refuseJob for kinds whose
 * contract pays on a refusal, releaseCollabResult for a clean-room result held
 * until its run's record is proved (jobs/collab/release.ts). A kind's params schema lives in jobs/params.ts.
 *
 * Frames: host -> enclave `{ id, method, params }`;
 *         enclave -> host `{ id, result }` or `{ id, error: { code, message } }`.
 * Nothing in a response may hold a secret: results are ciphertext for the
 * requester, public keys, signatures, digests and evidence.
 */
import { z } from "zod";
import { jobKindSchema } from "../protocol/job-kinds.ts";
import { resourceUseSchema } from "../protocol/provenance.ts";
import { addressSchema as address, hex32Schema as hex32T, hexSchema as hexT } from "../protocol/schemas.ts";
import { evidenceSchema } from "./evidence-schema.ts";
import { collabComputeParamsSchema, collabPartnerParamsSchema } from "./jobs/collab-params.ts";
import { bytes, operateJobParamsSchema, pipelineJobParamsSchema, taskJobParamsSchema, uint, uint256 } from "./jobs/params.ts";

export { evidenceSchema };

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
    /** SPKI DER (hex) of the P-256 key that signs provenance envelopes (DSSE keyid = SHA-256 of these bytes). */
    provenanceKey: hexT,
    /** SPKI DER (hex) of the P-256 key of the enclave's attested TLS certificates. */
    tlsKey: hexT,
    /** Lowercase hex. */
    measurement: z.string().regex(/^[0-9a-f]+$/),
    teeType,
    simulated: z.boolean(),
  })
  .strict();

/** `operator`: the host account the evidence is for; report_data commits to it. */
export const attestParamsSchema = z.object({ freshness: hex32T.optional(), operator: address }).strict();

export const attestResultSchema = z.object({ evidence: evidenceSchema, reportData: hexT }).strict();

/**
 * The job seam: one request shape for every kind of work. `params` is the kind's own (jobs/params.ts),
 * checked here on both sides; `evidenceCid` is the evidence the provenance record names.
 */
export const runJobParamsSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("task"), params: taskJobParamsSchema, evidenceCid: z.string() }).strict(),
  z.object({ kind: z.literal("pipeline"), params: pipelineJobParamsSchema, evidenceCid: z.string() }).strict(),
  z.object({ kind: z.literal("operate"), params: operateJobParamsSchema, evidenceCid: z.string() }).strict(),
  z.object({ kind: z.literal("collab-partner"), params: collabPartnerParamsSchema, evidenceCid: z.string() }).strict(),
  z.object({ kind: z.literal("collab-compute"), params: collabComputeParamsSchema, evidenceCid: z.string() }).strict(),
]);

/** A blob the host publishes as is; `cid` is its CID in the fixed profile (src/storage/unixfs-profile.ts): the host's put must return it. */
const publishedBlob = z.object({ bytes, digest: hex32T, cid: z.string() }).strict();

/**
 * An output the enclave keeps inside (`bytes` empty): its digest and CID are the provenance subject and what the
 * anchor signs; the enclave releases the bytes later (releaseCollabResult).
 */
const jobOutput = publishedBlob.extend({ name: z.string(), withheld: z.literal(true).optional() }).strict();

/** One outcome shape for every kind. */
export const jobOutcomeSchema = z
  .object({
    kind: jobKindSchema,
    jobId: uint256,
    /** The job's outputs by name (ciphertext for their recipients); their digests are the provenance subject. */
    outputs: z.array(jobOutput),
    /** The DSSE envelope (canonical JSON) of the provenance statement; `digest` is what the anchor names. */
    provenance: publishedBlob,
    /** What the job used; null when the kind keeps it from the host (a task's is the requester's alone). */
    resourceUse: resourceUseSchema.nullable(),
    /** A failure the kind reports to the host; null when it ran (a task's program failure is the requester's alone). */
    error: z.object({ code: z.string(), message: z.string() }).strict().nullable(),
    /**
     * The enclave's secp256k1 signature for the chain: `JobAnchor` (src/protocol/anchor.ts), or the kind's
     * own typed data where its contract keeps one (tasks: TaskMarket's Completion, which also signs the CIDs;
     * granted manipulations: Grants' Use over the grant, run id and provenance digest).
     */
    anchor: z.object({ type: z.enum(["JobAnchor", "TaskMarket.Completion", "Pipelines.Run", "Grants.Use", "Collaborations.Run"]), signature: hexT }).strict(),
  })
  .strict();

/** runJob's params and the attempt the node holds: the enclave signs a refusal only if the job cannot run for its submitter's fault. */
export const refuseJobParamsSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("task"), params: taskJobParamsSchema, attempt: uint(8) }).strict(),
]);
export const refuseJobResultSchema = z
  .object({
    /** The Refusal's reason code (src/protocol/refusal.ts). */
    reason: uint(8),
    /** The enclave error that made the job fail, for the node's log. */
    failure: z.object({ code: z.string(), message: z.string() }).strict(),
    /** EIP-712 signature over the kind's Refusal (tasks: TaskMarket's). */
    signature: hexT,
  })
  .strict();

/** A held clean-room result: the run it belongs to and the result digest its Run was signed with. */
export const releaseCollabResultParamsSchema = z.object({ chainId: uint256, contract: address, collaborationId: uint256, runId: uint(32), resultDigest: hex32T }).strict();
export const releaseCollabResultResultSchema = z
  .object({
    /** The sealed result (a party recipient) or the delivery receipt (a table, an endpoint: delivered now, from inside). */
    bytes,
    /** The checkpoint the record was proved at (the compute party's endpoints chose it). */
    provedAt: z.object({ number: z.string(), hash: hex32T, timestamp: z.string(), chosenBy: z.literal("party-endpoints") }).strict(),
  })
  .strict();

export const gateMethods = {
  init: { params: initParamsSchema, result: initResultSchema },
  attest: { params: attestParamsSchema, result: attestResultSchema },
  runJob: { params: runJobParamsSchema, result: jobOutcomeSchema },
  refuseJob: { params: refuseJobParamsSchema, result: refuseJobResultSchema },
  releaseCollabResult: { params: releaseCollabResultParamsSchema, result: releaseCollabResultResultSchema },
} as const;

export type GateMethod = keyof typeof gateMethods;
export type GateParams<M extends GateMethod> = z.infer<(typeof gateMethods)[M]["params"]>;
export type GateResult<M extends GateMethod> = z.infer<(typeof gateMethods)[M]["result"]>;
export type InitParams = GateParams<"init">;
export type EnclaveIdentity = GateResult<"init">;
export type AttestParams = GateParams<"attest">;
export type AttestResult = GateResult<"attest">;
export type RunJobParams = GateParams<"runJob">;
export type JobOutcome = GateResult<"runJob">;
export type RefuseJobParams = GateParams<"refuseJob">;
export type RefuseJobResult = GateResult<"refuseJob">;
export type ReleaseCollabResultParams = GateParams<"releaseCollabResult">;
export type ReleaseCollabResultResult = GateResult<"releaseCollabResult">;

export const requestFrameSchema = z
  .object({ id: z.number().int().nonnegative(), method: z.enum(["init", "attest", "runJob", "refuseJob", "releaseCollabResult"]), params: z.unknown() })
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
