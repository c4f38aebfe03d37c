/**
 * What an owner publishes for a pipeline, and the cursor state its runs pass
 * on (issue 14). Both sides use this module: the owner seals, the enclave
 * opens.
 *
 * The pipeline package is canonical JSON: a public part (connector types,
 * destination mode, transform kind and digest, schedule: what a node needs to
 * schedule the pipeline and an auditor to read the record), the pipeline spec
 * (urls with their passwords, SQL or program text, tables, paths) encrypted
 * with a fresh data key (AES-256-GCM stream, AAD = the binding), and that key
 * HPKE-wrapped to each candidate enclave (info = the binding). The host sees
 * the package, never the key nor the spec. Its SHA-256 is the pipeline digest
 * registered on chain, so no host can hand an enclave another package, and
 * since a package is at most one UnixFS chunk its CID is the raw CID of that
 * digest: anyone finds it from the chain alone.
 *
 * Cursor state: the last cursor value read (e.g. the greatest id), sealed
 * with a key derived from the pipeline's data key, so only the pipeline's
 * enclaves open it. Its SHA-256 is the run's cursorAfter on chain, which the
 * next run must start from (contracts/Pipelines.sol, CursorMismatch); its CID
 * is likewise the raw CID of that digest.
 */
import { hkdfSync } from "node:crypto";
import { encodeAbiParameters, getAddress, keccak256, type Address, type Hex } from "viem";
import { z } from "zod";
import { openStream, sealStream } from "../crypto/aead-stream.ts";
import { fromHex, toHex } from "../crypto/bytes.ts";
import { canonicalJsonBytes, type JsonValue } from "../crypto/canonical-json.ts";
import { openWith, sealTo } from "../crypto/hpke.ts";
import { sha256 } from "../crypto/sha256.ts";
import { CloisterError } from "../util/base-error.ts";
import { tagged } from "./binding.ts";
import { addressSchema, hex32Schema } from "./schemas.ts";

export const PIPELINE_KEY_TAG = "cloister/pipeline-key/v1";
export const PIPELINE_SPEC_TAG = "cloister/pipeline-spec/v1";
export const PIPELINE_CURSOR_TAG = "cloister/pipeline-cursor/v1";
export const PIPELINE_TRANSFORM_TAG = "cloister/pipeline-transform/v1";
/** A package is one raw IPFS block: its CID follows from its digest. */
export const MAX_PACKAGE_BYTES = 262_144;
export const ZERO_CURSOR: Hex = `0x${"0".repeat(64)}`;

export type PipelinePackageErrorCode = "PIPELINE_PACKAGE_MALFORMED" | "PIPELINE_PACKAGE_TOO_LARGE" | "PIPELINE_CURSOR_MALFORMED";
export class PipelinePackageError extends CloisterError<PipelinePackageErrorCode> {}

/** Which pipeline of which Pipelines contract on which chain: bound into every key and ciphertext. */
export interface PipelineBinding {
  chainId: bigint;
  contract: Address;
  pipelineId: bigint;
}

/** The transform as sealed: SQL over table `source`, a JS program's text (run in the task sandbox), or a copy. */
export type SealedTransform = { kind: "copy" } | { kind: "sql"; sql: string } | { kind: "program"; name: string; source: string };

/** The secret part: what the enclave needs to run the pipeline. File paths are absolute. */
export interface PipelineSpec {
  name: string;
  source: Record<string, unknown> & { type: string };
  transform: SealedTransform;
  destination: Record<string, unknown> & { type: string };
  schedule: string | null;
  /** JSON-RPC endpoints the enclave proves the pipeline's chain state from (k of n agree on the checkpoint); absent: the host's claim, checked by the run marker and the chain. */
  chainView?: { endpoints: string[]; quorum: number; finalityDepth: number };
}

const transformSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("copy") }).strict(),
  z.object({ kind: z.literal("sql"), sql: z.string().min(1) }).strict(),
  z.object({ kind: z.literal("program"), name: z.string(), source: z.string().min(1) }).strict(),
]);
const typed = z.looseObject({ type: z.string().min(1) });
export const pipelineSpecSchema = z
  .object({
    name: z.string().min(1),
    source: typed,
    transform: transformSchema,
    destination: typed,
    schedule: z.string().nullable(),
    chainView: z.object({ endpoints: z.array(z.string()).min(1), quorum: z.number().int().positive(), finalityDepth: z.number().int().nonnegative() }).strict().optional(),
  })
  .strict() as unknown as z.ZodType<PipelineSpec>;

const publicSchema = z
  .object({
    source: z.string(),
    destination: z.object({ type: z.string(), mode: z.string() }).strict(),
    transform: z.object({ kind: z.enum(["copy", "sql", "program"]), digest: hex32Schema.nullable() }).strict(),
    cursor: z.boolean(),
    schedule: z.string().nullable(),
  })
  .strict();
export type PipelinePublic = z.infer<typeof publicSchema>;

const packageSchema = z
  .object({
    version: z.literal(1),
    name: z.string(),
    chainId: z.string().regex(/^[0-9]+$/),
    contract: addressSchema,
    pipelineId: z.string().regex(/^[0-9]+$/),
    owner: addressSchema,
    public: publicSchema,
    /** base64 of the sealed spec. */
    spec: z.base64(),
    wrappedKeys: z.array(z.object({ enclave: addressSchema, enc: hex32Schema, ciphertext: z.string().regex(/^0x[0-9a-f]+$/) }).strict()).min(1),
  })
  .strict();
export type PipelinePackage = z.infer<typeof packageSchema>;

function bindingBody(b: PipelineBinding): Hex {
  return encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "uint256" }], [b.chainId, b.contract, b.pipelineId]);
}

export const pipelineKeyInfo = (b: PipelineBinding) => tagged(PIPELINE_KEY_TAG, bindingBody(b));
export const pipelineSpecAad = (b: PipelineBinding) => tagged(PIPELINE_SPEC_TAG, bindingBody(b));
export const pipelineCursorAad = (b: PipelineBinding) => tagged(PIPELINE_CURSOR_TAG, bindingBody(b));

/** Digest of a transform's SQL or program text, as the public part names it. */
export function transformDigest(t: SealedTransform): Hex | null {
  if (t.kind === "copy") return null;
  return sha256(tagged(PIPELINE_TRANSFORM_TAG, toHex(new TextEncoder().encode(t.kind === "sql" ? t.sql : t.source))));
}

/** The public part of a spec. */
export function publicPart(spec: PipelineSpec): PipelinePublic {
  return {
    source: spec.source.type,
    destination: { type: spec.destination.type, mode: String(spec.destination.mode ?? "append") },
    transform: { kind: spec.transform.kind, digest: transformDigest(spec.transform) },
    cursor: spec.source.cursor !== undefined || spec.source.type === "nats",
    schedule: spec.schedule,
  };
}

/** The owner seals `spec` to the candidates (their registered addresses and HPKE public keys). */
export async function sealPipeline(spec: PipelineSpec, binding: PipelineBinding & { owner: Address }, candidates: readonly { enclave: Address; hpkePublicKey: Hex }[]): Promise<Uint8Array> {
  const key = new Uint8Array(crypto.getRandomValues(new Uint8Array(32)));
  const sealedSpec = sealStream(key, canonicalJsonBytes(spec as unknown as JsonValue), { aad: pipelineSpecAad(binding), label: "pipeline spec" });
  const wrappedKeys = [];
  for (const c of candidates) {
    const { enc, ciphertext } = await sealTo(fromHex(c.hpkePublicKey), key, { info: pipelineKeyInfo(binding) });
    wrappedKeys.push({ enclave: getAddress(c.enclave), enc: toHex(enc), ciphertext: toHex(ciphertext) });
  }
  key.fill(0);
  const pkg: PipelinePackage = {
    version: 1,
    name: spec.name,
    chainId: binding.chainId.toString(),
    contract: getAddress(binding.contract),
    pipelineId: binding.pipelineId.toString(),
    owner: getAddress(binding.owner),
    public: publicPart(spec),
    spec: Buffer.from(sealedSpec).toString("base64"),
    wrappedKeys,
  };
  const bytes = canonicalJsonBytes(pkg as unknown as JsonValue);
  if (bytes.length > MAX_PACKAGE_BYTES) {
    throw new PipelinePackageError("PIPELINE_PACKAGE_TOO_LARGE", `the sealed pipeline is ${bytes.length} bytes, more than ${MAX_PACKAGE_BYTES}: shorten the transform program or name fewer candidates`);
  }
  return bytes;
}

export function parsePackage(bytes: Uint8Array): PipelinePackage {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new PipelinePackageError("PIPELINE_PACKAGE_MALFORMED", "the pipeline package is not UTF-8 JSON", { cause });
  }
  const parsed = packageSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PipelinePackageError("PIPELINE_PACKAGE_MALFORMED", `the pipeline package is malformed: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/** The binding a package names. */
export function bindingOf(pkg: PipelinePackage): PipelineBinding {
  return { chainId: BigInt(pkg.chainId), contract: getAddress(pkg.contract), pipelineId: BigInt(pkg.pipelineId) };
}

/** Unwraps the data key with the enclave's HPKE private key (throws the crypto error when it does not open). */
export async function unwrapPipelineKey(pkg: PipelinePackage, wrapped: PipelinePackage["wrappedKeys"][number], hpkePrivateKey: Uint8Array): Promise<Uint8Array> {
  return openWith(hpkePrivateKey, fromHex(wrapped.enc), fromHex(wrapped.ciphertext), { info: pipelineKeyInfo(bindingOf(pkg)) });
}

export function openSpec(pkg: PipelinePackage, key: Uint8Array): PipelineSpec {
  const plain = openStream(key, new Uint8Array(Buffer.from(pkg.spec, "base64")), { aad: pipelineSpecAad(bindingOf(pkg)), label: "pipeline spec" });
  const parsed = pipelineSpecSchema.safeParse(JSON.parse(new TextDecoder().decode(plain)));
  if (!parsed.success) throw new PipelinePackageError("PIPELINE_PACKAGE_MALFORMED", "the sealed pipeline spec is malformed");
  return parsed.data;
}

/** The cursor state a run passes to the next. */
export interface CursorState {
  pipelineId: string;
  /** Runs anchored before the one that sealed this state, plus one. */
  run: number;
  /** The cursor value (text), null before any row with a cursor was read. */
  cursor: string | null;
}

const cursorStateSchema = z.object({ pipelineId: z.string(), run: z.number().int().positive(), cursor: z.string().nullable() }).strict();

function cursorKey(dataKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", dataKey, new Uint8Array(0), PIPELINE_CURSOR_TAG, 32));
}

export function sealCursor(dataKey: Uint8Array, binding: PipelineBinding, state: CursorState): Uint8Array {
  return sealStream(cursorKey(dataKey), canonicalJsonBytes(state as unknown as JsonValue), { aad: pipelineCursorAad(binding), label: "pipeline cursor state" });
}

export function openCursor(dataKey: Uint8Array, binding: PipelineBinding, sealed: Uint8Array): CursorState {
  const plain = openStream(cursorKey(dataKey), sealed, { aad: pipelineCursorAad(binding), label: "pipeline cursor state" });
  const parsed = cursorStateSchema.safeParse(JSON.parse(new TextDecoder().decode(plain)));
  if (!parsed.success || parsed.data.pipelineId !== binding.pipelineId.toString()) throw new PipelinePackageError("PIPELINE_CURSOR_MALFORMED", "the cursor state is malformed or of another pipeline");
  return parsed.data;
}

/**
 * The id of the run that starts from `cursorBefore`: one id per cursor state, so every node that runs the
 * pipeline's next run (the one whose turn it is, or a failover candidate) runs the same run, the chain anchors
 * it once (RunAlreadyAnchored) and the destination's run marker lets it load once.
 */
export function pipelineRunId(pipelineId: bigint, cursorBefore: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: "string" }, { type: "uint256" }, { type: "bytes32" }], ["cloister/pipeline-run/v1", pipelineId, cursorBefore]));
}
