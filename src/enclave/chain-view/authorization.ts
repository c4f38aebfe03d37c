/**
 * Authorizations the enclave checks itself, so the host cannot forge one: an
 * owner (a data owner granting an operation, a party approving a query)
 * signs EIP-712 typed data { kind, scope, digest, expiry, nonce } under the
 * domain of the contract the job belongs to. The enclave checks the domain is
 * the one it expects, the message names this job's kind, scope and approved
 * digest, the signer is the owner (whom the job learns from the chain view,
 * e.g. a proved ownerOf), the expiry is after a trusted block's timestamp (the
 * enclave's own clock is the host's), and, for a one-shot grant, that its
 * nonce was never used.
 *
 * Only EOA signatures: a contract wallet (EIP-1271) would need an eth_call,
 * which no proof covers.
 */
import { recoverTypedDataAddress, type Address, type Hex } from "viem";
import { z } from "zod";
import { ChainViewError } from "./errors.ts";

/** The EIP-712 type every Cloister authorization is signed as. */
export const authorizationTypes = {
  Authorization: [
    { name: "kind", type: "string" },
    { name: "scope", type: "bytes32" },
    { name: "digest", type: "bytes32" },
    { name: "expiry", type: "uint64" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

export interface AuthorizationDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

export interface Authorization {
  /** The job kind it authorizes ("pipeline-run", "granted-op", "clean-room-query", ...). */
  kind: string;
  /** The job id, or the scope (a dataset, a collaboration) it covers. */
  scope: Hex;
  /** The digest of what is approved (the query, the operation, the pipeline manifest). */
  digest: Hex;
  /** Seconds since the epoch; compared with a trusted block's timestamp. */
  expiry: bigint;
  nonce: bigint;
}

export interface SignedAuthorization {
  domain: AuthorizationDomain;
  message: Authorization;
  signature: Hex;
}

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/);
/** A bigint, or its decimal string (an authorization that came as JSON). */
const uint = z.union([z.bigint().nonnegative(), z.string().regex(/^[0-9]{1,78}$/).transform(BigInt)]);
const signedSchema = z.object({
  domain: z.object({ name: z.string().max(64), version: z.string().max(16), chainId: z.number().int().positive(), verifyingContract: address }),
  message: z.object({
    kind: z.string().min(1).max(64),
    scope: bytes32,
    digest: bytes32,
    expiry: uint.pipe(z.bigint().max(2n ** 64n - 1n)),
    nonce: uint.pipe(z.bigint().max(2n ** 256n - 1n)),
  }),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
});

/** Nonces already used, per signer and domain. Persist it sealed, or prove use on chain (see docs/threat-model.md). */
export interface NonceLedger {
  used(key: string): boolean;
  record(key: string): void;
}

export class MemoryNonceLedger implements NonceLedger {
  readonly #used = new Set<string>();
  used(key: string): boolean {
    return this.#used.has(key);
  }
  record(key: string): void {
    this.#used.add(key);
  }
}

export interface ExpectedAuthorization {
  domain: AuthorizationDomain;
  kind: string;
  scope: Hex;
  digest: Hex;
  /** A trusted block's timestamp (ChainView header), not the enclave's clock. */
  now: bigint;
  /** A ledger for a one-shot grant; "reusable" for an approval that holds until it expires. */
  nonces: NonceLedger | "reusable";
}

function sameDomain(a: AuthorizationDomain, b: AuthorizationDomain): boolean {
  return a.name === b.name && a.version === b.version && a.chainId === b.chainId && a.verifyingContract.toLowerCase() === b.verifyingContract.toLowerCase();
}

/** Checks everything but the signer and the nonce; returns the signer the signature recovers to. */
async function recovered(raw: unknown, expected: ExpectedAuthorization): Promise<{ signed: SignedAuthorization; signer: Address }> {
  const parsed = signedSchema.safeParse(raw);
  if (!parsed.success) throw new ChainViewError("AUTHORIZATION_MALFORMED", "the authorization is not a well-formed signed EIP-712 Authorization", { cause: parsed.error });
  const signed = parsed.data as SignedAuthorization;
  const { domain, message } = signed;
  if (!sameDomain(domain, expected.domain)) {
    throw new ChainViewError("AUTHORIZATION_WRONG_DOMAIN", "the authorization was signed for another contract, chain or version; ask the owner to sign for this one", {
      details: { expected: { ...expected.domain }, got: { ...domain } },
    });
  }
  if (message.kind !== expected.kind || message.scope.toLowerCase() !== expected.scope.toLowerCase() || message.digest.toLowerCase() !== expected.digest.toLowerCase()) {
    throw new ChainViewError("AUTHORIZATION_SCOPE_MISMATCH", "the authorization covers another job kind, scope or digest than this job's", {
      details: { kind: message.kind, scope: message.scope, digest: message.digest },
    });
  }
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({ domain, types: authorizationTypes, primaryType: "Authorization", message, signature: signed.signature });
  } catch (error) {
    throw new ChainViewError("AUTHORIZATION_MALFORMED", "the authorization's signature does not recover to any signer", { cause: error });
  }
  if (message.expiry <= expected.now) {
    throw new ChainViewError("AUTHORIZATION_EXPIRED", `the authorization expired at ${message.expiry}, before the trusted block time ${expected.now}; ask the owner for a new one`, {
      details: { expiry: String(message.expiry), now: String(expected.now) },
    });
  }
  return { signed, signer };
}

function nonceKey(domain: AuthorizationDomain, signer: Address, nonce: bigint): string {
  return `${domain.chainId}:${domain.verifyingContract.toLowerCase()}:${signer.toLowerCase()}:${nonce}`;
}

/** Verifies one authorization by `owner`; on success a one-shot grant's nonce is consumed. */
export async function verifyAuthorization(raw: unknown, owner: Address, expected: ExpectedAuthorization): Promise<SignedAuthorization> {
  const { signed, signer } = await recovered(raw, expected);
  if (signer.toLowerCase() !== owner.toLowerCase()) {
    throw new ChainViewError("AUTHORIZATION_WRONG_SIGNER", "the authorization is not signed by the owner of record", { details: { owner, signer } });
  }
  consumeNonces(expected.nonces, [{ signed, signer }]);
  return signed;
}

/**
 * Verifies that every party approved: one authorization per party, each
 * signed by that party. Nonces are consumed only when all of them hold.
 */
export async function verifyApprovals(raws: readonly unknown[], parties: readonly Address[], expected: ExpectedAuthorization): Promise<SignedAuthorization[]> {
  const bySigner = new Map<string, SignedAuthorization>();
  for (const raw of raws) {
    const { signed, signer } = await recovered(raw, expected);
    if (!parties.some((p) => p.toLowerCase() === signer.toLowerCase())) {
      throw new ChainViewError("AUTHORIZATION_WRONG_SIGNER", "an approval is signed by someone who is not a party", { details: { signer } });
    }
    bySigner.set(signer.toLowerCase(), signed);
  }
  const missing = parties.filter((p) => !bySigner.has(p.toLowerCase()));
  if (missing.length) throw new ChainViewError("APPROVAL_MISSING", `${missing.length} of ${parties.length} parties have not approved`, { details: { missing } });
  const approvals = parties.map((signer) => ({ signed: bySigner.get(signer.toLowerCase())!, signer }));
  consumeNonces(expected.nonces, approvals);
  return approvals.map((a) => a.signed);
}

/** Refuses if any nonce was used, then records them all: all or nothing. */
function consumeNonces(nonces: NonceLedger | "reusable", signed: readonly { signed: SignedAuthorization; signer: Address }[]): void {
  if (nonces === "reusable") return;
  const keys = signed.map((s) => nonceKey(s.signed.domain, s.signer, s.signed.message.nonce));
  const replayed = signed.findIndex((_, i) => nonces.used(keys[i]!));
  if (replayed >= 0) {
    const { signer, signed: s } = signed[replayed]!;
    throw new ChainViewError("AUTHORIZATION_NONCE_REPLAYED", `nonce ${s.message.nonce} of ${signer} was already used; a grant runs once`, {
      details: { signer, nonce: String(s.message.nonce) },
    });
  }
  for (const key of keys) nonces.record(key);
}
