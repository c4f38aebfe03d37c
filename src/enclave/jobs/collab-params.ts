/**
 * The clean-room job kinds' parameters as they cross the call gate (see params.ts): the collaboration as the
 * chain holds it (terms, every party's signed approval), the attested peers the host introduces, and
 * ciphertext only (a party's dataset descriptors sealed to its enclave, a partner's rows sealed to the compute
 * enclave). Nothing here is trusted by the enclave before it checks it (collab/verify.ts).
 */
import { getAddress, type Hex } from "viem";
import { z } from "zod";
import { addressSchema as address, hex32Schema as hex32T, hexSchema as hexT } from "../../protocol/schemas.ts";
import { evidenceSchema } from "../evidence-schema.ts";
import { bytes, uint, uint256 } from "./params.ts";

/** Mirrors CollaborationTerms (src/protocol/collaboration.ts). */
export const collabTermsSchema = z
  .object({
    parties: z
      .array(z.object({ account: address, operator: address, measurement: hex32T, manifestDigest: hex32T, manifestRole: hex32T, datasetsDigest: hex32T }).strict())
      .min(2)
      .max(32),
    computeParty: uint(8),
    queryDigest: hex32T,
    queryText: z.string(),
    queryCid: z.string(),
    policyDigest: hex32T,
    maxRuns: uint(32),
    dpBudget: z.bigint().nonnegative(),
    recipient: z.string(),
    recipientPin: hex32T,
    allowSimulated: z.boolean(),
  })
  .strict();

/** The collaboration a job belongs to, with what every party signed. */
export const collabSchema = z
  .object({
    chainId: uint256,
    contract: address,
    id: uint256,
    terms: collabTermsSchema,
    /** One per party, in the terms' order: the EIP-712 Approval each party signed, at the nonce it names. */
    approvals: z.array(z.object({ nonce: z.bigint().nonnegative(), signature: hexT }).strict()),
    /** The SQL text when the terms carry only its CID (the enclave checks it against queryDigest). */
    queryText: z.string().optional(),
    /** The output policy as JSON text; its canonical digest must be the terms' policyDigest. */
    policy: z.string(),
    /** Party names, in the terms' order (what the provenance and the dataset tables call them; not trusted for anything else). */
    partyNames: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/)),
  })
  .strict();

/** An enclave the host introduces: its keys, its evidence for its operator, and the manifest the terms pin for its party. */
export const collabPeerSchema = z
  .object({
    party: uint(8),
    signer: address,
    hpkePublicKey: hex32T,
    provenanceKey: hexT,
    tlsKey: hexT,
    operator: address,
    freshness: hex32T.optional(),
    evidence: evidenceSchema,
    /** The policy manifest (JSON text) whose digest the terms name for this party, and the role in it. */
    manifest: z.string(),
    role: z.string(),
  })
  .strict();

/** A party's dataset descriptors, credentials included, HPKE-sealed by the party to its own enclave (collabDatasetsInfo). */
const sealedDatasets = bytes;

export const collabPartnerParamsSchema = z
  .object({
    collaboration: collabSchema,
    runId: uint(32),
    party: uint(8),
    datasets: sealedDatasets,
    /** The compute enclave, which the partner attests (its evidence here, its certificate in the TLS handshake) before it sends a row. */
    compute: collabPeerSchema,
    /** Where the compute enclave listens (as its host's relay reports it; untrusted: the peer is checked by attestation). */
    computeAddress: z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535) }).strict(),
    /** Where file paths in the descriptors resolve (the collaboration file's folder). */
    baseDir: z.string().optional(),
  })
  .strict();
export type CollabPartnerParams = z.infer<typeof collabPartnerParamsSchema>;

export const collabDeliverySchema = z.union([
  /** The recipient party's node: the result is sealed to this X25519 key; SHA-256(key) must be the terms' recipientPin. */
  z.object({ kind: z.literal("party"), key: hex32T }).strict(),
  /** A PostgreSQL table: its url with credentials, HPKE-sealed to this enclave (collabDeliveryInfo); the terms name it without them and pin its certificate. */
  z.object({ kind: z.literal("postgres"), sealed: bytes }).strict(),
  /** An HTTPS endpoint (the terms name it and pin its certificate); the rows are POSTed as JSON. */
  z.object({ kind: z.literal("https") }).strict(),
]);

export const collabComputeParamsSchema = z
  .object({
    collaboration: collabSchema,
    runId: uint(32),
    /** Epsilon (EPSILON_SCALE units) the chain records as spent before this run. */
    epsilonSpentBefore: z.bigint().nonnegative(),
    /** The compute party's own datasets, sealed to this enclave. */
    datasets: sealedDatasets,
    baseDir: z.string().optional(),
    /** Each other party's enclave: it must connect over mutual attested TLS with this certificate key and send its rows. */
    partners: z.array(collabPeerSchema),
    /** How long to wait for every partner's rows; 120 s by default. */
    partnerTimeoutMs: uint(32).optional(),
    delivery: collabDeliverySchema,
    /** DuckDB's memory limit for the run. */
    memoryMb: uint(32).optional(),
  })
  .strict();
export type CollabComputeParams = z.infer<typeof collabComputeParamsSchema>;
export type CollabPeer = z.infer<typeof collabPeerSchema>;
export type CollabJobCollaboration = z.infer<typeof collabSchema>;

/** The part every clean-room predicate opens with (protocol/job-kinds.ts `collabRecord`): which collaboration, run and terms. */
export function collabRecordPart(collaboration: CollabJobCollaboration, runId: number, termsHash: Hex) {
  return {
    chainId: collaboration.chainId.toString(),
    contract: getAddress(collaboration.contract),
    collaborationId: collaboration.id.toString(),
    runId,
    termsHash: termsHash.toLowerCase() as Hex,
  };
}
