/**
 * Execution provenance: one in-toto Statement v1 per task execution, in a DSSE
 * envelope signed by the enclave's secp256k1 key.
 *
 * Signature scheme (DSSE `sig`): ECDSA secp256k1 over SHA-256(PAE(payloadType,
 * payload)), no Ethereum message prefix, encoded as 65 bytes r || s || v
 * (v = 27 or 28, low s), base64. `keyid` is the enclave's checksummed address;
 * a verifier recovers the address from the signature and compares it with the
 * address it expects (e.g. the one registered on chain). SHA-256 rather than
 * keccak keeps the digest the one DSSE tooling uses; recovery lets the address
 * alone identify the key. verifyEnvelope recovers once per address and then
 * verifies against the remembered key (src/crypto/secp256k1-signers.ts), which
 * accepts exactly the same signatures, v included.
 *
 * Envelope bytes are the canonical JSON of { payload, payloadType, signatures };
 * provenanceDigest = SHA-256(envelope bytes).
 *
 * The statement is public (on IPFS), so it says what anyone may know of a run
 * and no more (docs/threat-model.md, "What the public record reveals"): which
 * task, program, input, envelope, enclave and limits, and when the run started
 * and finished to the second, as coarse as the chain's own block times. The
 * outcome and the exact resource use are the requester's alone: they travel
 * in the result record, encrypted to the requester. Predicate v1, signed
 * before this was so, also carried `resourceUse` and `outcome`; such
 * statements still parse.
 */
import { createHash } from "node:crypto";
import { getAddress, type Address, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { z } from "zod";
import { canonicalJson, canonicalJsonBytes, type JsonValue } from "../crypto/canonical-json.ts";
import { signerKeys } from "../crypto/secp256k1-signers.ts";
import { addressSchema as address, lowerHex32Schema as hex32 } from "./schemas.ts";
import { CloisterError } from "../util/base-error.ts";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://cloister.dev/provenance/task-execution/v2";
/** The first predicate, which also named the outcome and exact resource use. */
export const PREDICATE_TYPE_V1 = "https://cloister.dev/provenance/task-execution/v1";
export const PAYLOAD_TYPE = "application/vnd.in-toto+json";

export type ProvenanceErrorCode = "MALFORMED_ENVELOPE" | "WRONG_PAYLOAD_TYPE" | "BAD_SIGNATURE" | "SIGNER_MISMATCH" | "MALFORMED_STATEMENT";

export class ProvenanceError extends CloisterError<ProvenanceErrorCode> {}

/** Lowercase hex without 0x, as in-toto digest sets write it. */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const decimal = z.string().regex(/^[0-9]+$/);

const predicateSchema = z
  .object({
    task: z.object({ id: decimal, chainId: decimal, market: address }).strict(),
    program: z.object({ digest: hex32 }).strict(),
    inputs: z.array(z.object({ name: z.string(), digest: z.object({ sha256: sha256Hex }).strict() }).strict()),
    envelope: z.object({ digest: hex32 }).strict(),
    enclave: z
      .object({ signer: address, hpkePublicKey: hex32, measurement: z.string(), teeType: z.string(), simulated: z.boolean(), evidenceCid: z.string() })
      .strict(),
    // cpuTimeMs is absent from statements signed before the CPU-time limit existed.
    limits: z.object({ memoryMb: z.number(), cpuTimeMs: z.number().optional(), timeoutMs: z.number(), maxOutputBytes: z.number() }).strict(),
    startedOn: z.iso.datetime(),
    finishedOn: z.iso.datetime(),
  })
  .strict();

const predicateV1Schema = predicateSchema
  .extend({ resourceUse: z.object({ wallMs: z.number(), cpuMs: z.number(), outputBytes: z.number() }).strict(), outcome: z.enum(["ok", "error"]) })
  .strict();

const statementFields = {
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string(), digest: z.object({ sha256: sha256Hex }).strict() }).strict()).min(1),
};

const statementSchema = z.discriminatedUnion("predicateType", [
  z.object({ ...statementFields, predicateType: z.literal(PREDICATE_TYPE), predicate: predicateSchema }).strict(),
  z.object({ ...statementFields, predicateType: z.literal(PREDICATE_TYPE_V1), predicate: predicateV1Schema }).strict(),
]);

export type TaskExecutionPredicate = z.infer<typeof predicateSchema>;
export type ProvenanceStatement = z.infer<typeof statementSchema>;

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

export interface StatementInput {
  binding: { chainId: bigint; market: Address; taskId: bigint };
  /** SHA-256 of the result blob uploaded for the requester (the completion's outputDigest). */
  outputDigest: Hex;
  programDigest: Hex;
  /** SHA-256 of each input blob, by name. */
  inputDigests: { name: string; digest: Hex }[];
  envelopeDigest: Hex;
  /** hpkePublicKey lets a verifier recompute the key commitment in the enclave's report_data. */
  enclave: { signer: Address; hpkePublicKey: Hex; measurement: string; teeType: string; simulated: boolean; evidenceCid: string };
  limits: { memoryMb: number; cpuTimeMs?: number; timeoutMs: number; maxOutputBytes: number };
  /** Recorded rounded down to the second. */
  startedOn: Date;
  /** Recorded rounded up to the second. */
  finishedOn: Date;
}

export function buildStatement(input: StatementInput): ProvenanceStatement {
  return statementSchema.parse({
    _type: STATEMENT_TYPE,
    subject: [{ name: "result", digest: { sha256: bare(input.outputDigest) } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      task: { id: input.binding.taskId.toString(), chainId: input.binding.chainId.toString(), market: getAddress(input.binding.market) },
      program: { digest: input.programDigest.toLowerCase() },
      inputs: input.inputDigests.map((i) => ({ name: i.name, digest: { sha256: bare(i.digest) } })),
      envelope: { digest: input.envelopeDigest.toLowerCase() },
      enclave: { ...input.enclave, signer: getAddress(input.enclave.signer), hpkePublicKey: input.enclave.hpkePublicKey.toLowerCase() },
      limits: { ...input.limits },
      startedOn: new Date(Math.floor(input.startedOn.getTime() / 1000) * 1000).toISOString(),
      finishedOn: new Date(Math.ceil(input.finishedOn.getTime() / 1000) * 1000).toISOString(),
    },
  });
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** What signs an envelope: a viem local account (`privateKeyToAccount`) fits. */
export interface HashSigner {
  address: Address;
  /** Raw secp256k1 signature over a 32-byte hash, 65 bytes r||s||v hex. */
  sign(args: { hash: Hex }): Promise<Hex>;
}

/** Signs a statement; returns the envelope's canonical JSON bytes. */
export async function signEnvelope(statement: ProvenanceStatement, signer: HashSigner): Promise<Uint8Array> {
  const payload = canonicalJsonBytes(statement as unknown as JsonValue);
  const signature = await signer.sign({ hash: sha256(pae(PAYLOAD_TYPE, payload)) });
  const envelope: DsseEnvelope = {
    payload: Buffer.from(payload).toString("base64"),
    payloadType: PAYLOAD_TYPE,
    signatures: [{ keyid: getAddress(signer.address), sig: Buffer.from(signature.slice(2), "hex").toString("base64") }],
  };
  return new TextEncoder().encode(canonicalJson(envelope as unknown as JsonValue));
}

/** A DSSE envelope's fields once it parses and carries a Cloister statement; its signatures are not checked. */
function openEnvelope(envelopeBytes: Uint8Array): { envelope: DsseEnvelope; payload: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelopeBytes));
  } catch (cause) {
    throw new ProvenanceError("MALFORMED_ENVELOPE", "provenance envelope is not UTF-8 JSON", { cause });
  }
  const result = envelopeSchema.safeParse(parsed);
  if (!result.success) throw new ProvenanceError("MALFORMED_ENVELOPE", `provenance envelope is not a DSSE envelope: ${result.error.message}`);
  const envelope = result.data;
  if (envelope.payloadType !== PAYLOAD_TYPE) {
    throw new ProvenanceError("WRONG_PAYLOAD_TYPE", `provenance envelope carries "${envelope.payloadType}", expected "${PAYLOAD_TYPE}"`);
  }
  return { envelope, payload: new Uint8Array(Buffer.from(envelope.payload, "base64")) };
}

/**
 * Checks a DSSE envelope's signature by `expectedSigner` and returns its payload.
 * Throws ProvenanceError when the envelope is malformed, of another payload
 * type, or not signed by that address.
 */
export async function verifyEnvelope(envelopeBytes: Uint8Array, expectedSigner: Address): Promise<{ payloadType: string; payload: Uint8Array }> {
  const { envelope, payload } = openEnvelope(envelopeBytes);
  const digest = createHash("sha256").update(pae(envelope.payloadType, payload)).digest();
  const recovered: Address[] = [];
  for (const { sig } of envelope.signatures) {
    const check = signerKeys.check(digest, Buffer.from(sig, "base64"), expectedSigner);
    if (check.ok) return { payloadType: envelope.payloadType, payload };
    // A signature that recovers no key counts as no signature.
    if (check.recovered !== undefined) recovered.push(getAddress(check.recovered));
  }
  if (recovered.length === 0) throw new ProvenanceError("BAD_SIGNATURE", "provenance envelope has no valid secp256k1 signature over its payload");
  throw new ProvenanceError(
    "SIGNER_MISMATCH",
    `provenance envelope is signed by ${recovered.join(", ")}, not by the expected enclave ${getAddress(expectedSigner)}: it was altered or signed by another key`,
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
  if (!result.success) throw new ProvenanceError("MALFORMED_STATEMENT", `provenance payload is not a Cloister task-execution statement: ${result.error.message}`);
  return result.data;
}

/**
 * The statement of an envelope whose exact bytes the caller has already authenticated: their SHA-256 is the
 * provenance digest in a completion whose EIP-712 signature by the enclave it checked. That signature covers
 * these bytes, DSSE signature included, so checking the DSSE signature as well would add nothing; a verifier
 * holding the envelope alone must use verifyProvenance.
 */
export function statementOfSignedEnvelope(envelopeBytes: Uint8Array): ProvenanceStatement {
  return parseStatement(openEnvelope(envelopeBytes).payload);
}

/** verifyEnvelope + parseStatement: the statement, once its signature by `expectedSigner` is checked. */
export async function verifyProvenance(envelopeBytes: Uint8Array, expectedSigner: Address): Promise<ProvenanceStatement> {
  const { payload } = await verifyEnvelope(envelopeBytes, expectedSigner);
  return parseStatement(payload);
}

/** SHA-256 of the envelope bytes, as anchored in the completion. */
export function provenanceDigest(envelopeBytes: Uint8Array): Hex {
  return sha256(envelopeBytes);
}

function bare(digest: Hex): string {
  return digest.slice(2).toLowerCase();
}
