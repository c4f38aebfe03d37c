/**
 * The owner's side of a retrieval: open the slot enclaves' responses with the
 * ephemeral private key of the request the owner signed, check each share
 * against the share set whose root the owner read from the chain, and
 * recombine. A response for another token, version, slot or request does not
 * open; a share that opens but was altered before sealing fails its
 * commitment; either way it is set aside and the owner needs k good ones.
 */
import type { Hex } from "viem";
import type { HpkeSealed } from "../crypto/hpke.ts";
import { openRetrievalResponse } from "./vault-envelopes.ts";
import { VaultShareError } from "./vault-errors.ts";
import { retrievalRequestDigest, type SignedRetrievalRequest } from "./vault-retrieval.ts";
import { combineShares, type RejectedShare, type ShareSetDescriptor, type VaultShare } from "./vault-shares.ts";

/** One slot enclave's answer, as the host relays it. */
export interface RetrievalResponse extends HpkeSealed {
  slot: number;
  version: bigint;
}

export interface RecoverArgs {
  /** The share set description, checked against `root`. */
  descriptor: ShareSetDescriptor;
  /** The commitment root the vault contract holds for this token's current version. */
  root: Hex;
  /** The request the owner signed and sent. */
  request: SignedRetrievalRequest;
  /** The ephemeral X25519 private key whose public half the request names. */
  ephemeralPrivateKey: Uint8Array;
  responses: readonly RetrievalResponse[];
}

export async function recoverSecret(args: RecoverArgs): Promise<Uint8Array> {
  const { descriptor: d, request } = args;
  if (request.message.tokenId !== d.binding.tokenId || BigInt(request.domain.chainId) !== d.binding.chainId || request.domain.verifyingContract.toLowerCase() !== d.binding.vault.toLowerCase()) {
    throw new VaultShareError("INVALID_ARGUMENT", "the retrieval request is for another token or vault than the share set", { details: { tokenId: String(request.message.tokenId), expected: String(d.binding.tokenId) } });
  }
  const digest = retrievalRequestDigest(request.domain, request.message);
  const opened: VaultShare[] = [];
  const rejected: RejectedShare[] = [];
  for (const r of args.responses) {
    if (r.version !== d.version) {
      rejected.push({ slot: r.slot, code: "WRONG_BINDING" });
      continue;
    }
    try {
      opened.push(await openRetrievalResponse(args.ephemeralPrivateKey, { binding: d.binding, version: d.version, slot: r.slot }, digest, r));
    } catch (error) {
      if (!(error instanceof VaultShareError)) throw error;
      rejected.push({ slot: r.slot, code: error.code });
    }
  }
  return combineShares(d, args.root, opened, rejected);
}
