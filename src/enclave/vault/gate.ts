/**
 * The vault enclave's call gate: the same framing as the task runtime's
 * (src/enclave/call-gate.ts: `{ id, method, params }` → `{ id, result }` or
 * `{ id, error: { code, message } }` over Node's IPC channel with "advanced"
 * serialization), its own methods. Requests are validated here, in the
 * enclave; every result is public data: ciphertext sealed to a named key,
 * descriptors (commitments only), signatures, token ids, counters.
 */
import { z } from "zod";
import { addressSchema, hex32Schema } from "../../protocol/schemas.ts";

// The same shapes as the task runtime's gate (call-gate.ts), declared here so that the vault image does not
// load the task runtime's schemas (and its measurement does not change when they do).
const attestationConfigSchema = z.union([
  z.object({ provider: z.literal("sim"), pkiDir: z.string().min(1) }).catchall(z.unknown()),
  z.object({ provider: z.string().min(1), pkiDir: z.string().optional() }).catchall(z.unknown()),
]);
const attestParamsSchema = z.object({ freshness: hex32Schema.optional(), operator: addressSchema }).strict();

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be a Uint8Array");
const tokenId = z.bigint().nonnegative().lt(1n << 256n);
const block = z.bigint().nonnegative();
/** A store or transfer envelope: one message (sequence number `seq`) of an HPKE context. */
const envelope = z.strictObject({ enc: bytes, ciphertext: bytes, seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) });

export const vaultChainConfigSchema = z.strictObject({
  chainId: z.number().int().positive(),
  vault: addressSchema,
  registry: addressSchema,
  endpoints: z.array(z.strictObject({ name: z.string().min(1).max(64), url: z.string().regex(/^https?:\/\//) })).min(1).max(16),
  quorum: z.number().int().positive(),
  finalityDepth: z.number().int().nonnegative(),
});
export type VaultChainConfigParams = z.infer<typeof vaultChainConfigSchema>;

export const vaultGateParams = {
  init: z.strictObject({ dataDir: z.string().min(1), attestation: attestationConfigSchema, chain: vaultChainConfigSchema }),
  attest: attestParamsSchema,
  status: z.strictObject({}),
  store: z.strictObject({ descriptor: z.unknown(), envelope }),
  storeMany: z.strictObject({ items: z.array(z.strictObject({ descriptor: z.unknown(), envelope })).min(1).max(10_000), atBlock: block.optional() }),
  importShares: z.strictObject({ items: z.array(z.strictObject({ descriptor: z.unknown(), envelope })).max(10_000), cursor: tokenId.optional(), atBlock: block.optional() }),
  confirmations: z.strictObject({ max: z.number().int().positive().max(5_000), batches: z.number().int().positive().max(64).optional() }),
  markConfirmed: z.strictObject({ shares: z.array(z.strictObject({ tokenId, version: z.bigint().positive() })) }),
  retrieve: z.strictObject({ request: z.unknown() }),
  exportShares: z.strictObject({ requester: addressSchema, tokenIds: z.array(tokenId).max(10_000) }),
  missing: z.strictObject({ tokens: z.array(z.strictObject({ tokenId, version: z.bigint().positive() })).max(10_000) }),
  held: z.strictObject({ after: tokenId.nullable(), limit: z.number().int().positive().max(10_000) }),
  drop: z.strictObject({ tokenId }),
  reshareExport: z.strictObject({ tokenId, dealer: addressSchema }),
  reshareDeal: z.strictObject({ tokenId, items: z.array(z.strictObject({ slot: z.number().int().min(0).max(255), descriptor: z.unknown(), envelope })).min(1).max(255) }),
  reshareAccept: z.strictObject({ descriptor: z.unknown(), envelope }),
  reshareCommit: z.strictObject({ tokenId }),
  listen: z.strictObject({}),
  fetchFrom: z.strictObject({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535), peer: addressSchema, tokenIds: z.array(tokenId).min(1).max(10_000), atBlock: block.optional() }),
  bootstrapFrom: z.strictObject({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535), peer: addressSchema, pageSize: z.number().int().min(1).max(10_000), maxPages: z.number().int().min(1).optional() }),
  bootstrapDone: z.strictObject({ block }),
  advance: z.strictObject({ block, caughtUp: z.boolean() }),
} as const;

export type VaultGateMethod = keyof typeof vaultGateParams;
export type VaultGateParams<M extends VaultGateMethod> = z.infer<(typeof vaultGateParams)[M]>;

export const vaultRequestFrameSchema = z.strictObject({
  id: z.number().int().nonnegative(),
  method: z.enum(Object.keys(vaultGateParams) as [VaultGateMethod, ...VaultGateMethod[]]),
  params: z.unknown(),
});
