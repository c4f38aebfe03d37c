/**
 * The operator's side of an owner grant (job kind `operate`): what the owner
 * hands to the operator and what the operator's enclave checks.
 *
 * - The grant document: the terms the owner signed (EIP-712 Grant, see
 *   grants.ts), the salt and the signature, plus the granted dataset sealed
 *   (HPKE) to each enclave of the operator the owner chose. The enclave takes
 *   the grant's scope (dataset, operations, statement digest, operator) only
 *   from these signed terms, never from the host.
 * - The dataset: a name (its keccak256 is the grant's `dataset`), the table
 *   the grant covers, and how to reach it (a PostgreSQL or MariaDB URL with
 *   its password, or a DuckDB database file). It is sealed to one enclave and
 *   to one grant (HPKE info binds chain, contract, grant id and enclave).
 * - The run id of a grant's n-th use: fixed by n (the `uses` the enclave
 *   proves on chain), so two runs at the same use collide on chain
 *   (RunAlreadyRecorded) and in the dataset's run marker.
 * - The statement's operation and table, as the enclave reads them off the
 *   one statement allowed.
 */
import { encodeAbiParameters, getAddress, keccak256, toHex, type Address, type Hex } from "viem";
import { z } from "zod";
import { CloisterError } from "../util/base-error.ts";
import { tagged } from "./binding.ts";
import { DOMAIN } from "./domains.ts";
import type { GrantOperation, GrantTerms } from "./grants.ts";
import { addressSchema, hex32Schema, hexSchema } from "./schemas.ts";

/** Where a grant lives: the chain, the Grants contract and the grant's id. */
export interface GrantBinding {
  chainId: bigint;
  grants: Address;
  grantId: bigint;
}

const uint = (bits: number) => z.number().int().nonnegative().max(2 ** bits - 1);

export const grantTermsSchema = z
  .object({
    owner: addressSchema,
    operator: addressSchema,
    dataset: hex32Schema,
    operations: uint(8),
    statementDigest: hex32Schema,
    purpose: z.string().min(1).max(4096),
    notBefore: uint(40),
    expiry: uint(40),
    maxUses: uint(32),
  })
  .strict() as unknown as z.ZodType<GrantTerms>;

/** The owner's EIP-712 Grant: terms, salt, signature. */
export const signedGrantSchema = z.object({ terms: grantTermsSchema, salt: hex32Schema, signature: hexSchema }).strict();
export type SignedGrant = z.infer<typeof signedGrantSchema>;

/** The dataset sealed to one enclave: HPKE enc and ciphertext of the GrantedDataset JSON. */
export const sealedDatasetSchema = z.object({ enclave: addressSchema, enc: hexSchema, ciphertext: hexSchema }).strict();
export type SealedDataset = z.infer<typeof sealedDatasetSchema>;

const nonEmpty = z.string().min(1).max(4096);
const certificatePin = z.string().regex(/^[0-9a-fA-F]{64}$/).optional();
/** How the enclave reaches the dataset. `pin` (PostgreSQL, MySQL): SHA-256 hex of the server certificate, for TLS through the enclave's relay. */
export const datasetConnectionSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("postgres"), url: nonEmpty, pin: certificatePin }).strict(),
  z.object({ type: z.literal("mysql"), url: nonEmpty, pin: certificatePin }).strict(),
  z.object({ type: z.literal("duckdb"), path: nonEmpty }).strict(),
]);
/**
 * The dataset as the owner seals it. `registry`: the EnclaveRegistry the grant's Grants contract checks, stated
 * by the owner, so the host cannot point the enclave's proof of its own operator at another contract.
 * `chainView`: see chainViewSchema.
 */
/**
 * JSON-RPC endpoints the owner trusts for the chain, sealed with the dataset so that a quorum of them, not the
 * host, chooses the block the grant is proved at (a host can otherwise replay a block from before a revocation).
 */
export const chainViewSchema = z
  .object({ endpoints: z.array(z.url({ protocol: /^https?$/ })).min(1).max(8), quorum: z.number().int().positive(), finalityDepth: z.number().int().nonnegative().max(1024) })
  .strict()
  .refine((c) => c.quorum <= c.endpoints.length && 2 * c.quorum > c.endpoints.length, { message: "quorum must be a majority of the endpoints (n/2 < quorum <= n)", path: ["quorum"] });
export const grantedDatasetSchema = z.object({ name: nonEmpty, table: nonEmpty, connection: datasetConnectionSchema, registry: addressSchema, chainView: chainViewSchema.optional() }).strict();
export type GrantedDataset = z.infer<typeof grantedDatasetSchema>;

/** What the owner hands to the operator (a file, or an IPFS blob): public but for the sealed datasets, which only the named enclaves open. */
export const grantDocumentSchema = z
  .object({
    version: z.literal(1),
    chainId: z.number().int().positive(),
    grants: addressSchema,
    /** Decimal. */
    grantId: z.string().regex(/^[0-9]{1,78}$/),
    grant: signedGrantSchema,
    datasets: z.array(sealedDatasetSchema),
  })
  .strict();
export type GrantDocument = z.infer<typeof grantDocumentSchema>;

export type GrantDocumentErrorCode = "GRANT_DOCUMENT_INVALID" | "GRANT_STATEMENT_UNSUPPORTED";
export class GrantDocumentError extends CloisterError<GrantDocumentErrorCode> {}

export function parseGrantDocument(raw: unknown, source: string): GrantDocument {
  const parsed = grantDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GrantDocumentError("GRANT_DOCUMENT_INVALID", `${source}: ${issue.path.join(".") || "(top level)"} ${issue.message}; a grant document is what 'cloister grant create' wrote`);
  }
  return parsed.data;
}

/** HPKE info of a dataset sealed to `enclave` for one grant. */
export function grantDatasetInfo(binding: GrantBinding, enclave: Address): Uint8Array {
  const body = encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "address" }], [binding.chainId, getAddress(binding.grants), binding.grantId, getAddress(enclave)]);
  return tagged(DOMAIN.grantDataset, body);
}

/** The run id of use number `useIndex` (0-based: the grant's `uses` before it). */
export function grantRunId(binding: GrantBinding, useIndex: number): Hex {
  const body = encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "uint32" }], [binding.chainId, getAddress(binding.grants), binding.grantId, useIndex]);
  return keccak256(toHex(tagged(DOMAIN.grantRun, body)));
}

/** HPKE info of the rows of a granted read, sealed to the operator's result key for one run. */
export function grantReadInfo(binding: GrantBinding, runId: Hex): Uint8Array {
  const body = encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "bytes32" }], [binding.chainId, getAddress(binding.grants), binding.grantId, runId]);
  return tagged(DOMAIN.grantRead, body);
}

/** The rows of a granted read as the operator decrypts them: column names, and each cell as text (null stays null). */
export interface GrantReadResult {
  columns: string[];
  rows: (string | null)[][];
}

/**
 * Where EnclaveRegistry keeps an enclave's entry (AccessControl's `_roles` is slot 0): `enclaves[signer]` at
 * keccak256(abi.encode(signer, 1)); its word 0 packs operator (160 bits), expiry (64), teeType (8), simulated (8),
 * revoked (8). The enclave proves its own operator with it.
 */
export const registryStorage = { enclavesSlot: 1n } as const;

export function decodeRegistryEnclaveWord(word: Hex): { operator: Address; expiry: bigint; revoked: boolean } {
  const v = BigInt(word);
  const bits = (from: bigint, width: bigint) => (v >> from) & ((1n << width) - 1n);
  return { operator: getAddress(`0x${bits(0n, 160n).toString(16).padStart(40, "0")}`), expiry: bits(160n, 64n), revoked: bits(240n, 8n) !== 0n };
}

export interface StatementShape {
  operation: GrantOperation;
  /** The target table as written, unquoted parts lowercased ("public.accounts"). */
  table: string;
}

const identPart = String.raw`(?:"(?:[^"]|"")+"|\x60[^\x60]+\x60|[A-Za-z_][A-Za-z0-9_$]*)`;
const ident = `(${identPart}(?:\\s*\\.\\s*${identPart})?)`;
const shapes: { operation: GrantOperation; pattern: RegExp }[] = [
  { operation: "update", pattern: new RegExp(`^update\\s+(?:only\\s+)?${ident}`, "i") },
  { operation: "delete", pattern: new RegExp(`^delete\\s+from\\s+(?:only\\s+)?${ident}`, "i") },
  { operation: "insert", pattern: new RegExp(`^insert\\s+into\\s+${ident}`, "i") },
  // A read: its first FROM names the table (the owner signed the whole statement; joins are the owner's to read).
  { operation: "read", pattern: new RegExp(`^select\\s[\\s\\S]*?\\sfrom\\s+${ident}`, "i") },
];

/** A table name as the enclave compares it: quoted parts as written, unquoted ones lowercased. */
export function normalizeTableName(name: string): string {
  const parts = name.match(new RegExp(identPart, "g")) ?? [];
  return parts.map((p) => (p.startsWith('"') ? p.slice(1, -1).replaceAll('""', '"') : p.startsWith("`") ? p.slice(1, -1) : p.toLowerCase())).join(".");
}

function stripLeadingComments(text: string): string {
  let s = text.trimStart();
  for (;;) {
    if (s.startsWith("--")) s = s.slice(s.indexOf("\n") === -1 ? s.length : s.indexOf("\n") + 1).trimStart();
    else if (s.startsWith("/*")) s = s.slice(s.indexOf("*/") === -1 ? s.length : s.indexOf("*/") + 2).trimStart();
    else return s;
  }
}

/**
 * The operation and target table of one UPDATE, DELETE, INSERT Refused: several statements (any
 * `;` but a trailing one), reads (a granted read's rows would need a recipient: not built), and anything else.
 */
export function statementShape(statement: string): StatementShape {
  const body = stripLeadingComments(statement).trimEnd().replace(/;$/, "").trimEnd();
  if (body.includes(";")) {
    throw new GrantDocumentError("GRANT_STATEMENT_UNSUPPORTED", "the statement holds several statements (a ';' before its end); a grant allows exactly one UPDATE, DELETE or INSERT");
  }
  for (const { operation, pattern } of shapes) {
    const m = pattern.exec(body);
    if (m) return { operation, table: normalizeTableName(m[1]!) };
  }
  throw new GrantDocumentError(
    "GRANT_STATEMENT_UNSUPPORTED",
    "the statement is not one UPDATE <table>, DELETE FROM <table>, INSERT INTO <table> or SELECT ... FROM <table>; other statements (WITH, DDL, ...) are not supported",
  );
}
