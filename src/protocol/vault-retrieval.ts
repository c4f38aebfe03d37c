/**
 * The owner's retrieval request: EIP-712 typed data signed by the token's
 * owner of record, naming the token, the owner's ephemeral X25519 key (the
 * only key a share may be returned to), a validity window in blocks and a
 * nonce. Each slot enclave verifies it (verifyRetrievalRequest) against what
 * its host cannot forge: `owner` is ownerOf(tokenId) proved at a trusted
 * block (the chain view), and `trustedBlock` is that block's number; the
 * enclave's own clock and the host's word are never used.
 *
 * Block numbers rather than timestamps: the window is "a few blocks", and a
 * block number is what the chain view proves state at. Only EOA signatures
 * (no EIP-1271: a contract wallet's answer would need an eth_call no proof
 * covers), as for src/enclave/chain-view/authorization.ts.
 */
import { randomBytes } from "node:crypto";
import { hashTypedData, recoverTypedDataAddress, type Address, type Hex, type LocalAccount } from "viem";
import { z } from "zod";
import { VaultShareError } from "./vault-errors.ts";

export const vaultDomainVersion = "1";
/** The EIP-712 name the vault contract uses, unless it says otherwise. */
export const defaultVaultDomainName = "Cloister Vault";
/** The longest window an enclave accepts by default: about 13 minutes of 12-second blocks. */
export const DEFAULT_MAX_VALIDITY_BLOCKS = 64n;

export const vaultRetrievalTypes = {
  VaultRetrieval: [
    { name: "tokenId", type: "uint256" },
    { name: "ownerKey", type: "bytes32" },
    { name: "notBeforeBlock", type: "uint64" },
    { name: "notAfterBlock", type: "uint64" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

export interface VaultDomain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

export interface VaultRetrievalRequest {
  tokenId: bigint;
  /** The owner's ephemeral X25519 public key, 32 bytes as hex. */
  ownerKey: Hex;
  /** First block at which the request is valid. */
  notBeforeBlock: bigint;
  /** Last block at which the request is valid. */
  notAfterBlock: bigint;
  nonce: bigint;
}

export interface SignedRetrievalRequest {
  domain: VaultDomain;
  message: VaultRetrievalRequest;
  signature: Hex;
}

export function vaultDomain(chainId: number, vault: Address, name: string = defaultVaultDomainName): VaultDomain {
  return { name, version: vaultDomainVersion, chainId, verifyingContract: vault };
}

/** The EIP-712 digest of a request: what a retrieval response's HPKE info binds. */
export function retrievalRequestDigest(domain: VaultDomain, message: VaultRetrievalRequest): Hex {
  return hashTypedData({ domain, types: vaultRetrievalTypes, primaryType: "VaultRetrieval", message });
}

export interface NewRetrievalRequest {
  tokenId: bigint;
  ownerKey: Uint8Array;
  /** The latest block the owner knows of. */
  currentBlock: bigint;
  /** How many blocks after currentBlock the request stays valid. */
  validityBlocks: bigint;
}

/** The owner's side: a fresh request with a random nonce, signed by `account`. */
export async function signRetrievalRequest(account: LocalAccount, domain: VaultDomain, r: NewRetrievalRequest): Promise<SignedRetrievalRequest> {
  if (r.ownerKey.length !== 32) throw new VaultShareError("INVALID_ARGUMENT", "the owner's ephemeral key must be 32 bytes (X25519)");
  const message: VaultRetrievalRequest = {
    tokenId: r.tokenId,
    ownerKey: `0x${Buffer.from(r.ownerKey).toString("hex")}`,
    notBeforeBlock: r.currentBlock,
    notAfterBlock: r.currentBlock + r.validityBlocks,
    nonce: BigInt(`0x${randomBytes(32).toString("hex")}`),
  };
  const signature = await account.signTypedData({ domain, types: vaultRetrievalTypes, primaryType: "VaultRetrieval", message });
  return { domain, message, signature };
}

/**
 * Nonces a slot enclave has served. `claim` records the key and says whether
 * it was new, atomically; the enclave may forget a key once its block is
 * past (the request is expired by then anyway). Persist it sealed: a store
 * that forgets on restart lets a request be replayed until it expires.
 */
export interface RetrievalNonceStore {
  claim(key: string, notAfterBlock: bigint): boolean | Promise<boolean>;
}

export class MemoryRetrievalNonceStore implements RetrievalNonceStore {
  readonly #used = new Map<string, bigint>();
  claim(key: string, notAfterBlock: bigint): boolean {
    if (this.#used.has(key)) return false;
    this.#used.set(key, notAfterBlock);
    return true;
  }
  /** Forgets nonces of requests that expired before `trustedBlock`. */
  prune(trustedBlock: bigint): void {
    for (const [key, last] of this.#used) if (last < trustedBlock) this.#used.delete(key);
  }
  get size(): number {
    return this.#used.size;
  }
}

export interface RetrievalExpectation {
  /** This vault contract's domain. */
  domain: VaultDomain;
  tokenId: bigint;
  /** ownerOf(tokenId), proved at trustedBlock (chain view), never the host's word. */
  owner: Address;
  /** The number of a trusted (quorum-checked, fresh) block. */
  trustedBlock: bigint;
  /** Longest window accepted; DEFAULT_MAX_VALIDITY_BLOCKS if absent. */
  maxValidityBlocks?: bigint;
  nonces: RetrievalNonceStore;
}

export interface VerifiedRetrieval {
  request: VaultRetrievalRequest;
  /** The EIP-712 digest: bind the response to it (sealRetrievalResponse). */
  digest: Hex;
  /** The owner's ephemeral key as raw bytes: the only key the share goes to. */
  ownerKey: Uint8Array;
}

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);
const uint = (max: bigint) => z.union([z.bigint().nonnegative(), z.string().regex(/^[0-9]{1,78}$/).transform(BigInt)]).pipe(z.bigint().max(max));
const signedSchema = z.object({
  domain: z.object({ name: z.string().max(64), version: z.string().max(16), chainId: z.number().int().positive(), verifyingContract: address }),
  message: z.object({
    tokenId: uint(2n ** 256n - 1n),
    ownerKey: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
    notBeforeBlock: uint(2n ** 64n - 1n),
    notAfterBlock: uint(2n ** 64n - 1n),
    nonce: uint(2n ** 256n - 1n),
  }),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
});

function sameDomain(a: VaultDomain, b: VaultDomain): boolean {
  return a.name === b.name && a.version === b.version && a.chainId === b.chainId && a.verifyingContract.toLowerCase() === b.verifyingContract.toLowerCase();
}

/**
 * The slot enclave's check, in this order: well-formed, this vault's domain,
 * this token, signed by the owner of record, inside its window at the trusted
 * block, nonce never served. The nonce is consumed only when all else holds,
 * so a refused request does not burn it.
 */
export async function verifyRetrievalRequest(raw: unknown, expected: RetrievalExpectation): Promise<VerifiedRetrieval> {
  const parsed = signedSchema.safeParse(raw);
  if (!parsed.success) throw new VaultShareError("REQUEST_MALFORMED", "the retrieval request is not a well-formed signed EIP-712 VaultRetrieval", { cause: parsed.error });
  const { domain, signature } = parsed.data as SignedRetrievalRequest;
  const message = parsed.data.message as VaultRetrievalRequest;
  if (!sameDomain(domain, expected.domain)) {
    throw new VaultShareError("REQUEST_WRONG_DOMAIN", "the retrieval request was signed for another vault contract, chain or version; sign it for this one", {
      details: { expected: { ...expected.domain }, got: { ...domain } },
    });
  }
  if (message.tokenId !== expected.tokenId) {
    throw new VaultShareError("REQUEST_WRONG_TOKEN", `the retrieval request is for token ${message.tokenId}, not token ${expected.tokenId}`, {
      details: { tokenId: String(message.tokenId), expected: String(expected.tokenId) },
    });
  }
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({ domain, types: vaultRetrievalTypes, primaryType: "VaultRetrieval", message, signature });
  } catch (cause) {
    throw new VaultShareError("REQUEST_MALFORMED", "the retrieval request's signature does not recover to any signer", { cause });
  }
  if (signer.toLowerCase() !== expected.owner.toLowerCase()) {
    throw new VaultShareError("WRONG_OWNER", "the retrieval request is not signed by the token's current owner of record", {
      details: { tokenId: String(expected.tokenId), owner: expected.owner, signer },
    });
  }
  const max = expected.maxValidityBlocks ?? DEFAULT_MAX_VALIDITY_BLOCKS;
  const { notBeforeBlock, notAfterBlock } = message;
  const window = { notBeforeBlock: String(notBeforeBlock), notAfterBlock: String(notAfterBlock), trustedBlock: String(expected.trustedBlock), maxValidityBlocks: String(max) };
  if (notAfterBlock < notBeforeBlock || notAfterBlock - notBeforeBlock > max) {
    throw new VaultShareError("REQUEST_EXPIRED", `the retrieval request's window is longer than ${max} blocks (or ends before it starts); sign one with a shorter window`, { details: window });
  }
  if (expected.trustedBlock < notBeforeBlock || expected.trustedBlock > notAfterBlock) {
    throw new VaultShareError("REQUEST_EXPIRED", `the retrieval request is valid for blocks ${notBeforeBlock} to ${notAfterBlock}, not at block ${expected.trustedBlock}; sign a new one`, { details: window });
  }
  const key = `${domain.chainId}:${domain.verifyingContract.toLowerCase()}:${message.tokenId}:${signer.toLowerCase()}:${message.nonce}`;
  if (!(await expected.nonces.claim(key, notAfterBlock))) {
    throw new VaultShareError("REQUEST_REPLAYED", "this retrieval request was already served; sign a new one", {
      details: { tokenId: String(message.tokenId), nonce: String(message.nonce) },
    });
  }
  return { request: message, digest: retrievalRequestDigest(domain, message), ownerKey: Uint8Array.from(Buffer.from(message.ownerKey.slice(2), "hex")) };
}
