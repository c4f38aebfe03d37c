/**
 * Provenance of every job an enclave runs: one in-toto Statement v1 in a DSSE
 * envelope, signed by the enclave's P-256 provenance key, whatever the job
 * kind.
 *
 * Statement: `_type` https://in-toto.io/Statement/v1; `subject` = the job's
 * outputs by name and SHA-256; `predicateType` = PREDICATE_TYPE; `predicate`
 * = a common part (job kind and id, the enclave's identity: its four public
 * keys, measurement, TEE and evidence CID; input digests; the policy digest
 * the job ran under, null until the manifest exists; start and finish times
 * to the second; resource use, null when the kind keeps it from the public)
 * plus the kind's own part under the kind's name (src/protocol/job-kinds.ts).
 *
 * DSSE: payloadType application/vnd.in-toto+json; signature = ECDSA
 * P-256/SHA-256 over PAE(payloadType, payload), ASN.1 DER, base64; keyid =
 * lowercase hex SHA-256 of the key's SPKI DER. Any DSSE verifier given the
 * SPKI (from the enclave's evidence document, whose report_data commits to
 * it) checks it: no Ethereum-specific recovery, no secp256k1.
 *
 * Envelope bytes are the canonical JSON of { payload, payloadType, signatures };
 * provenanceDigest = SHA-256(envelope bytes), which the on-chain anchor names.
 *
 * The statement is public (on IPFS), so it says what anyone may know of a run
 * and no more (docs/threat-model.md, "What the public record reveals"): a
 * task's record names no outcome and no exact resource use, which travel in
 * the result encrypted to the requester.
 */
import type { KeyObject } from "node:crypto";
import { getAddress, type Hex } from "viem";
import { z } from "zod";
import { canonicalJson, canonicalJsonBytes, type JsonValue } from "../crypto/canonical-json.ts";
import { p256KeyId, signP256, verifyP256 } from "../crypto/p256.ts";
import { sha256 } from "../crypto/sha256.ts";
import { CloisterError } from "../util/base-error.ts";
import { JOB_KINDS, kindPredicateSchemas, type JobKind, type KindPredicates } from "./job-kinds.ts";
import { addressSchema as address, hexSchema, lowerHex32Schema as hex32 } from "./schemas.ts";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://cloister.dev/provenance/job/v1";
export const PAYLOAD_TYPE = "application/vnd.in-toto+json";

export type ProvenanceErrorCode = "MALFORMED_ENVELOPE" | "WRONG_PAYLOAD_TYPE" | "BAD_SIGNATURE" | "MALFORMED_STATEMENT";

export class ProvenanceError extends CloisterError<ProvenanceErrorCode> {}

/** Lowercase hex without 0x, as in-toto digest sets write it. */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const decimal = z.string().regex(/^[0-9]+$/);
const digestSet = z.object({ sha256: sha256Hex }).strict();
const named = z.object({ name: z.string(), digest: digestSet }).strict();

export const resourceUseSchema = z.object({ wallMs: z.number(), cpuMs: z.number(), outputBytes: z.number() }).strict();

const enclaveSchema = z
  .object({
    signer: address,
    hpkePublicKey: hex32,
    /** SPKI DER hex of the P-256 key that signs this envelope. */
    provenanceKey: hexSchema,
    /** SPKI DER hex of the P-256 attested-TLS key. */
    tlsKey: hexSchema,
    measurement: z.string(),
    teeType: z.string(),
    simulated: z.boolean(),
    evidenceCid: z.string(),
  })
  .strict();

const commonPredicate = {
  enclave: enclaveSchema,
  inputs: z.array(named),
  /** Digest of the policy document (manifest) the job ran under; null until jobs bind to one. */
  policy: z.object({ digest: hex32.nullable() }).strict(),
  startedOn: z.iso.datetime(),
  finishedOn: z.iso.datetime(),
  /** Null when the kind keeps resource use from the public (a task's is the requester's alone). */
  resourceUse: resourceUseSchema.nullable(),
};

const predicateSchemas = JOB_KINDS.map((kind) =>
  z.object({ ...commonPredicate, job: z.object({ kind: z.literal(kind), id: decimal }).strict(), [kind]: kindPredicateSchemas[kind] }).strict(),
);

const statementSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: z.array(named).min(1),
    predicateType: z.literal(PREDICATE_TYPE),
    predicate: z.union(predicateSchemas as unknown as [z.ZodType, ...z.ZodType[]]),
  })
  .strict();

type Common = z.infer<z.ZodObject<typeof commonPredicate>>;
/** Distributes over a union of kinds: a predicate has its own kind's part only. */
export type JobPredicate<K extends JobKind = JobKind> = K extends JobKind ? Common & { job: { kind: K; id: string } } & { [P in K]: KindPredicates[P] } : never;
export interface ProvenanceStatement<K extends JobKind = JobKind> {
  _type: typeof STATEMENT_TYPE;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: typeof PREDICATE_TYPE;
  predicate: JobPredicate<K>;
}
export type EnclaveRecord = z.infer<typeof enclaveSchema>;

export interface DsseEnvelope {
  payload: string;
  payloadType: string;
  signatures: { keyid: string; sig: string }[];
}

const envelopeSchema = z
  .object({
    payload: z.base64(),
    payloadType: z.string(),
    signatures: z.array(z.object({ keyid: z.string(), sig: z.base64() }).strict()).min(1),
  })
  .strict();

export interface StatementInput<K extends JobKind> {
  kind: K;
  jobId: bigint;
  /** SHA-256 of each output blob, by name (the statement's subject). */
  outputs: { name: string; digest: Hex }[];
  /** SHA-256 of each input blob, by name. */
  inputs: { name: string; digest: Hex }[];
  enclave: EnclaveRecord;
  policyDigest: Hex | null;
  resourceUse: z.infer<typeof resourceUseSchema> | null;
  /** Recorded rounded down to the second. */
  startedOn: Date;
  /** Recorded rounded up to the second. */
  finishedOn: Date;
  /** The kind's own predicate part. */
  kindPredicate: KindPredicates[K];
}

export function buildStatement<K extends JobKind>(input: StatementInput<K>): ProvenanceStatement<K> {
  const statement = {
    _type: STATEMENT_TYPE,
    subject: input.outputs.map((o) => ({ name: o.name, digest: { sha256: bare(o.digest) } })),
    predicateType: PREDICATE_TYPE,
    predicate: {
      job: { kind: input.kind, id: input.jobId.toString() },
      enclave: {
        ...input.enclave,
        signer: getAddress(input.enclave.signer),
        hpkePublicKey: input.enclave.hpkePublicKey.toLowerCase(),
        provenanceKey: input.enclave.provenanceKey.toLowerCase(),
        tlsKey: input.enclave.tlsKey.toLowerCase(),
      },
      inputs: input.inputs.map((i) => ({ name: i.name, digest: { sha256: bare(i.digest) } })),
      policy: { digest: input.policyDigest?.toLowerCase() ?? null },
      startedOn: new Date(Math.floor(input.startedOn.getTime() / 1000) * 1000).toISOString(),
      finishedOn: new Date(Math.ceil(input.finishedOn.getTime() / 1000) * 1000).toISOString(),
      resourceUse: input.resourceUse,
      [input.kind]: input.kindPredicate,
    },
  };
  const parsed = statementSchema.safeParse(statement);
  if (!parsed.success) throw new ProvenanceError("MALFORMED_STATEMENT", `refusing to sign a malformed provenance statement: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}`);
  return parsed.data as ProvenanceStatement<K>;
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in bytes, decimal). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** The P-256 key that signs envelopes: its SPKI DER and a node:crypto private key. */
export interface ProvenanceSigner {
  spki: Uint8Array;
  privateKey: KeyObject;
}

/** Signs a statement; returns the envelope's canonical JSON bytes. */
export function signEnvelope(statement: ProvenanceStatement, signer: ProvenanceSigner): Uint8Array {
  const payload = canonicalJsonBytes(statement as unknown as JsonValue);
  const sig = signP256(signer.privateKey, pae(PAYLOAD_TYPE, payload));
  const envelope: DsseEnvelope = {
    payload: Buffer.from(payload).toString("base64"),
    payloadType: PAYLOAD_TYPE,
    signatures: [{ keyid: p256KeyId(signer.spki), sig: Buffer.from(sig).toString("base64") }],
  };
  return new TextEncoder().encode(canonicalJson(envelope as unknown as JsonValue));
}

/** A DSSE envelope's fields once it parses and carries an in-toto payload; its signatures are not checked. */
function openEnvelope(envelopeBytes: Uint8Array): { envelope: DsseEnvelope; payload: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelopeBytes));
  } catch (cause) {
    throw new ProvenanceError("MALFORMED_ENVELOPE", "provenance envelope is not UTF-8 JSON", { cause });
  }
  const result = envelopeSchema.safeParse(parsed);
  if (!result.success) throw new ProvenanceError("MALFORMED_ENVELOPE", `provenance envelope is not a DSSE envelope: ${result.error.issues[0]?.message ?? "invalid"}`);
  const envelope = result.data;
  if (envelope.payloadType !== PAYLOAD_TYPE) {
    throw new ProvenanceError("WRONG_PAYLOAD_TYPE", `provenance envelope carries "${envelope.payloadType}", expected "${PAYLOAD_TYPE}"`);
  }
  return { envelope, payload: new Uint8Array(Buffer.from(envelope.payload, "base64")) };
}

/**
 * Checks that a DSSE envelope is signed by the P-256 key whose SPKI DER is `provenanceKey` and returns its
 * payload. Throws ProvenanceError when the envelope is malformed, of another payload type, or has no valid
 * signature by that key.
 */
export function verifyEnvelope(envelopeBytes: Uint8Array, provenanceKey: Uint8Array): { payloadType: string; payload: Uint8Array } {
  const { envelope, payload } = openEnvelope(envelopeBytes);
  const message = pae(envelope.payloadType, payload);
  if (envelope.signatures.some(({ sig }) => verifyP256(provenanceKey, message, Buffer.from(sig, "base64")))) return { payloadType: envelope.payloadType, payload };
  throw new ProvenanceError(
    "BAD_SIGNATURE",
    `provenance envelope has no valid signature by the enclave's provenance key (keyid ${p256KeyId(provenanceKey)}): it was altered or signed by another key`,
  );
}

export function parseStatement(payload: Uint8Array): ProvenanceStatement {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (cause) {
    throw new ProvenanceError("MALFORMED_STATEMENT", "provenance payload is not UTF-8 JSON", { cause });
  }
  const result = statementSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ProvenanceError("MALFORMED_STATEMENT", `provenance payload is not a Cloister job statement (${PREDICATE_TYPE}): ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return result.data as ProvenanceStatement;
}

/** The statement of an envelope, before its signature is checked: to learn which key to check it against. */
export function unverifiedStatement(envelopeBytes: Uint8Array): ProvenanceStatement {
  return parseStatement(openEnvelope(envelopeBytes).payload);
}

/**
 * The statement of an envelope whose exact bytes the caller has already authenticated: their SHA-256 is the
 * provenance digest in a completion whose EIP-712 signature by the enclave it checked. That signature covers
 * these bytes, DSSE signature included, so checking the DSSE signature as well would add nothing; a verifier
 * holding the envelope alone must use verifyProvenance.
 */
export function statementOfSignedEnvelope(envelopeBytes: Uint8Array): ProvenanceStatement {
  return unverifiedStatement(envelopeBytes);
}

/** verifyEnvelope + parseStatement: the statement, once its signature by `provenanceKey` (SPKI DER) is checked. */
export function verifyProvenance(envelopeBytes: Uint8Array, provenanceKey: Uint8Array): ProvenanceStatement {
  return parseStatement(verifyEnvelope(envelopeBytes, provenanceKey).payload);
}

/** SHA-256 of the envelope bytes, as anchored on chain. */
export function provenanceDigest(envelopeBytes: Uint8Array): Hex {
  return sha256(envelopeBytes);
}

/** The pipeline predicate of a statement, or undefined for another kind. */
export function pipelinePart(statement: ProvenanceStatement): (JobPredicate<"pipeline">)["pipeline"] | undefined {
  return statement.predicate.job.kind === "pipeline" ? (statement.predicate as JobPredicate<"pipeline">).pipeline : undefined;
}

/** The operate (granted manipulation) predicate of a statement, or undefined for another kind. */
export function operatePart(statement: ProvenanceStatement): (JobPredicate<"operate">)["operate"] | undefined {
  return statement.predicate.job.kind === "operate" ? (statement.predicate as JobPredicate<"operate">).operate : undefined;
}

/** The task predicate of a statement, or undefined for another kind. */
export function taskPart(statement: ProvenanceStatement): (JobPredicate<"task">)["task"] | undefined {
  return statement.predicate.job.kind === "task" ? (statement.predicate as JobPredicate<"task">).task : undefined;
}

function bare(digest: Hex): string {
  return digest.slice(2).toLowerCase();
}
