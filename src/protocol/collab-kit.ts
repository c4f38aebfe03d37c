/**
 * The public documents a clean-room run on a network passes through IPFS (docs/cleanroom.md, "Running on a
 * network"); the chain names them by CID (Collaborations PartyNodeAssigned, RunJoined):
 *
 * - a party's **run kit** for the node it assigns: its dataset descriptors sealed by the party to that node's
 *   enclave (HPKE, collabDatasetsInfo: the node's host carries ciphertext), and public text the enclaves check
 *   against the terms (the output policy, the manifest) or use only as labels (the party names). The
 *   recipient party's kit carries its public X25519 key (the compute enclave checks it against recipientPin);
 *   a compute party's kit for a table recipient, the table's url sealed to the compute enclave.
 * - a node's **peer record** for one run: its enclave's evidence document (keys and evidence, bound to its
 *   operator and to the run's freshness), the manifest and role to check it under and, from the compute
 *   party's node, the address its enclave listens on.
 *
 * Nothing here is trusted: every field is checked by the enclaves (collab/verify.ts) or only routes bytes.
 */
import { z } from "zod";
import { addressSchema, hex32Schema } from "./schemas.ts";

export const COLLAB_KIT_FORMAT = "cloister-collab-kit/v1";
export const COLLAB_PEER_FORMAT = "cloister-collab-peer/v1";

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");

export const collabKitSchema = z
  .object({
    format: z.literal(COLLAB_KIT_FORMAT),
    party: z.number().int().min(0).max(31),
    partyNames: z.array(z.string()).min(2).max(32),
    /** The output policy as JSON text (its canonical digest is the terms' policyDigest). */
    policy: z.string(),
    /** The policy manifest (JSON text) and role the terms pin for this party. */
    manifest: z.string(),
    role: z.string(),
    /** Where relative file paths in the descriptors resolve, on the node's machine. */
    baseDir: z.string().optional(),
    /** The descriptors, credentials included, HPKE-sealed to the assigned enclave. */
    datasets: base64,
    /** The recipient party's public X25519 key. */
    recipientKey: hex32Schema.optional(),
    /** For a table recipient, in the compute party's kit: its url and table sealed to the compute enclave (collabDeliveryInfo). */
    delivery: base64.optional(),
    /** The file's limits, in the compute party's kit: DuckDB's memory limit, how long to wait for the partners' rows. */
    limits: z.object({ memoryMb: z.number().int().positive().optional(), partnerTimeoutMs: z.number().int().positive().optional() }).strict().optional(),
  })
  .strict();
export type CollabKit = z.infer<typeof collabKitSchema>;

export const collabPeerRecordSchema = z
  .object({
    format: z.literal(COLLAB_PEER_FORMAT),
    party: z.number().int().min(0).max(31),
    /** The enclave's evidence document (encodeEvidence with its keys) on IPFS. */
    evidenceCid: z.string().min(1),
    operator: addressSchema,
    freshness: hex32Schema,
    manifest: z.string(),
    role: z.string(),
    /** Where the compute enclave listens, as its host's relay advertises it. */
    listen: z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535) }).strict().optional(),
  })
  .strict();
export type CollabPeerRecord = z.infer<typeof collabPeerRecordSchema>;

export function encodeCollabDocument(doc: CollabKit | CollabPeerRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

/** Parses a kit or peer record fetched from IPFS; throws ZodError (or SyntaxError) on anything else. */
export function decodeCollabDocument<T extends z.ZodType>(schema: T, bytes: Uint8Array): z.infer<T> {
  return schema.parse(JSON.parse(new TextDecoder().decode(bytes)));
}
