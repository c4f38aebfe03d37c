/**
 * What a clean-room run binds beyond the on-chain terms (./collaboration.ts):
 * the digests the terms name (the output policy, each party's dataset
 * descriptors without credentials), and the sealed blobs that cross a host,
 * each HPKE-sealed with an info that names the chain, the contract and the
 * collaboration (and the party, or the run and the recipient key), so a blob
 * made for one collaboration, party or run opens for no other:
 *
 * - a party's dataset descriptors (with credentials) sealed by the party to its own enclave;
 * - the run's result sealed by the compute enclave to the recipient's X25519 key.
 *
 * A partner's rows do not cross a host sealed: they go over mutual attested TLS
 * between the enclaves (src/enclave/jobs/collab/transfer.ts).
 */
import { encodeAbiParameters, type Address, type Hex } from "viem";
import { z } from "zod";
import { openStream, sealStream, generateDataKey } from "../crypto/aead-stream.ts";
import { canonicalJsonBytes, type JsonValue } from "../crypto/canonical-json.ts";
import { openWith, sealTo } from "../crypto/hpke.ts";
import { sha256 } from "../crypto/sha256.ts";
import { CloisterError } from "../util/base-error.ts";
import { digestSet } from "./anchor.ts";
import { tagged } from "./binding.ts";
import { DOMAIN } from "./domains.ts";
import { chainViewSchema } from "./operate.ts";

export type CollabSealErrorCode = "COLLAB_BLOB_MALFORMED" | "COLLAB_BLOB_WRONG_BINDING";
export class CollabSealError extends CloisterError<CollabSealErrorCode> {}

/** The collaboration a blob belongs to. */
export interface CollabBinding {
  chainId: bigint;
  contract: Address;
  collaborationId: bigint;
}

const enc = (types: { type: string }[], values: unknown[]) => encodeAbiParameters(types, values);

/** SHA-256(tag || 0x00 || canonical JSON of the policy): the terms' policyDigest. */
export function collabPolicyDigest(policy: JsonValue): Hex {
  return sha256(Buffer.concat([Buffer.from(DOMAIN.collabPolicy), Buffer.from([0]), Buffer.from(canonicalJsonBytes(policy))]));
}

/**
 * A descriptor as the terms name it: a url's user name and password removed (the credentials reach only the
 * party's enclave; the approved terms name the server, database and table). Everything else is kept.
 */
export function publicDescriptor(descriptor: Record<string, unknown>): Record<string, unknown> {
  if (typeof descriptor.url !== "string") return descriptor;
  try {
    const url = new URL(descriptor.url);
    url.username = "";
    url.password = "";
    return { ...descriptor, url: url.toString() };
  } catch {
    return { ...descriptor, url: "(unparseable url)" };
  }
}

/** JSON-RPC endpoints a party trusts for the chain (the grants' chainViewSchema: a majority quorum, a finality depth). */
export type CollabChainView = z.infer<typeof chainViewSchema>;

/** What a party seals to its own enclave: its descriptors (credentials included) and the chain endpoints it trusts, if any. */
export interface CollabPartyDatasets {
  datasets: Record<string, Record<string, unknown>>;
  chainView?: CollabChainView;
}

const taggedDigest = (tag: string, value: JsonValue) => sha256(Buffer.concat([Buffer.from(tag), Buffer.from([0]), Buffer.from(canonicalJsonBytes(value))]));

/**
 * The terms' datasetsDigest: digestSet over the party's datasets, each as SHA-256(tag || 0x00 || canonical JSON
 * of its public descriptor), plus, when the party names chain endpoints, an entry "@chainView" (not a SQL
 * identifier, so no dataset's name) over them: the terms bind the endpoints, so a host that re-seals the
 * descriptors without them is refused. A party without endpoints has the digest it always had.
 */
export function collabDatasetsDigest(party: CollabPartyDatasets): Hex {
  const entries = Object.entries(party.datasets).map(([name, descriptor]) => ({ name, digest: taggedDigest(DOMAIN.collabDataset, publicDescriptor(descriptor) as JsonValue) }));
  if (party.chainView) entries.push({ name: "@chainView", digest: taggedDigest(DOMAIN.collabChainView, party.chainView as JsonValue) });
  return digestSet(entries);
}

/** The plaintext a party seals to its enclave (collabDatasetsInfo). */
export function encodePartyDatasets(party: CollabPartyDatasets): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ datasets: party.datasets, ...(party.chainView ? { chainView: party.chainView } : {}) }));
}

const partyDatasetsSchema = z.object({ datasets: z.record(z.string(), z.record(z.string(), z.unknown())), chainView: chainViewSchema.optional() }).strict();

/** Parses what encodePartyDatasets made; anything else is COLLAB_BLOB_MALFORMED. */
export function decodePartyDatasets(plain: Uint8Array, what: string): CollabPartyDatasets {
  let parsed;
  try {
    parsed = partyDatasetsSchema.safeParse(JSON.parse(new TextDecoder().decode(plain)));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) throw new CollabSealError("COLLAB_BLOB_MALFORMED", `${what} are not {"datasets": {...}, "chainView"?: {endpoints, quorum, finalityDepth}}: sealed by an older release, or altered`);
  const { datasets, chainView } = parsed.data;
  return { datasets, ...(chainView ? { chainView } : {}) };
}

function bindingAbi(b: CollabBinding): Hex {
  return enc([{ type: "uint256" }, { type: "address" }, { type: "uint256" }], [b.chainId, b.contract, b.collaborationId]);
}

export function collabDatasetsInfo(b: CollabBinding, party: number): Uint8Array {
  return tagged(DOMAIN.collabDatasets, enc([{ type: "bytes" }, { type: "uint8" }], [bindingAbi(b), party]));
}

/** HPKE info of the recipient table's url (with its credentials), sealed by the recipient's side to the compute enclave. */
export function collabDeliveryInfo(b: CollabBinding): Uint8Array {
  return tagged(DOMAIN.collabDelivery, bindingAbi(b));
}

/** The terms' recipient descriptor of a PostgreSQL table (credentials removed) or an HTTPS endpoint. */
export function recipientDescriptor(r: { postgres: string; table: string } | { https: string }): string {
  if ("https" in r) return `https:${r.https}`;
  return `postgres:${publicDescriptor({ url: r.postgres }).url as string}#${r.table}`;
}

export function collabResultInfo(b: CollabBinding, runId: number, recipientKey: Uint8Array): Uint8Array {
  return tagged(DOMAIN.collabResult, enc([{ type: "bytes" }, { type: "uint32" }, { type: "bytes32" }], [bindingAbi(b), runId, sha256(recipientKey)]));
}

const MAGIC = new TextEncoder().encode("CLC1");
const ENC_BYTES = 32;
const WRAPPED_BYTES = 48;
const PREFIX = MAGIC.length + ENC_BYTES + WRAPPED_BYTES;

/** HPKE-wraps a fresh data key to `publicKey`, and streams `plaintext` under it: "CLC1" || enc || wrapped key || stream. */
export async function sealCollabBlob(publicKey: Uint8Array, info: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const dataKey = generateDataKey();
  try {
    const { enc: e, ciphertext } = await sealTo(publicKey, dataKey, { info });
    const body = sealStream(dataKey, plaintext, { aad: info, chunkSize: 1024 * 1024 });
    const out = new Uint8Array(PREFIX + body.length);
    out.set(MAGIC, 0);
    out.set(e, MAGIC.length);
    out.set(ciphertext, MAGIC.length + ENC_BYTES);
    out.set(body, PREFIX);
    return out;
  } finally {
    dataKey.fill(0);
  }
}

/** Opens a sealCollabBlob blob; a blob sealed for another key or binding is COLLAB_BLOB_WRONG_BINDING. */
export async function openCollabBlob(privateKey: Uint8Array, info: Uint8Array, blob: Uint8Array, what: string): Promise<Uint8Array> {
  if (blob.length < PREFIX || !MAGIC.every((b, i) => blob[i] === b)) {
    throw new CollabSealError("COLLAB_BLOB_MALFORMED", `${what} is not a sealed clean-room blob (it must start with "CLC1" and be at least ${PREFIX} bytes)`);
  }
  let dataKey: Uint8Array;
  try {
    dataKey = await openWith(privateKey, blob.subarray(MAGIC.length, MAGIC.length + ENC_BYTES), blob.subarray(MAGIC.length + ENC_BYTES, PREFIX), { info });
  } catch (cause) {
    throw new CollabSealError("COLLAB_BLOB_WRONG_BINDING", `${what} was not sealed to this key for this collaboration, run and party (or it was altered)`, { cause });
  }
  try {
    return openStream(dataKey, blob.subarray(PREFIX), { aad: info, label: what });
  } catch (cause) {
    throw new CollabSealError("COLLAB_BLOB_WRONG_BINDING", `${what} did not decrypt: altered or truncated`, { cause });
  } finally {
    dataKey.fill(0);
  }
}

/** What the recipient decrypts: the delivered rows of one run. Integers beyond 2^53 are decimal strings. */
export interface CollabResult {
  collaborationId: string;
  runId: number;
  columns: string[];
  rows: (string | number | boolean | null)[][];
  suppressed: number;
  /** Decimal epsilon this run spent ("0" without DP). */
  epsilonSpent: string;
  /** Output columns that carry noise. */
  noised: string[];
}

export function encodeCollabResult(result: CollabResult): Uint8Array {
  return canonicalJsonBytes(result as unknown as JsonValue);
}

export function decodeCollabResult(bytes: Uint8Array): CollabResult {
  const parsed = JSON.parse(new TextDecoder().decode(bytes)) as CollabResult;
  if (!Array.isArray(parsed.columns) || !Array.isArray(parsed.rows) || typeof parsed.suppressed !== "number") {
    throw new CollabSealError("COLLAB_BLOB_MALFORMED", "the decrypted result is not a clean-room result (columns, rows, suppressed)");
  }
  return parsed;
}

/** The recipient pin of a party recipient: SHA-256 of its raw X25519 public key. */
export function recipientKeyPin(publicKey: Uint8Array): Hex {
  return sha256(publicKey);
}
