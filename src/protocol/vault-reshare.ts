/**
 * Proactive refresh of a vault secret's shares (issue 15 item 5): same
 * secret, new shares at version + 1; the old set no longer matches the root
 * the contract holds, so its shares fail every commitment check.
 *
 * Construction: a refresh dealer, one attested vault enclave, receives k
 * shares of the current version (each sealed to its HPKE key with the
 * "transfer" purpose, checked against the current root), recombines the
 * payload (salt, secret, padding) inside the enclave, checks it against the secret commitment, splits
 * it again with fresh randomness (new polynomials, new x-coordinates, new
 * share salts), and erases the plaintext. The salt is kept, so the secret
 * commitment is the same at every version: the owner and the contract can
 * tell the new set shares the same secret.
 *
 * What it trusts: the dealer enclave's TEE and measurement for the moment the
 * secret is whole in it (the same trust the owner already puts in one slot
 * enclave for its share, but for the whole secret), and the old holders to
 * erase their old shares once version + 1 is confirmed: k old shares still
 * recombine to the secret for whoever keeps them, which is true of every
 * proactive scheme. Not chosen: each enclave dealing a sharing of zero that
 * the holders add to their shares (no enclave ever sees the secret, but it
 * needs evaluating at the holders' x-coordinates, which the audited package
 * does not expose, and verifiable zero-sharings, i.e. our own field
 * arithmetic); see docs/vault.md.
 */
import type { Hex } from "viem";
import { VaultShareError } from "./vault-errors.ts";
import { combinePayload, splitPayload, type ShareSet, type ShareSetDescriptor, type VaultShare } from "./vault-shares.ts";

export interface RefreshOptions {
  /** Defaults to the current threshold. */
  threshold?: number;
  /** Defaults to the current share count (a cluster's slots). */
  shareCount?: number;
}

/** Inside the refresh dealer: k checked shares of `current` to a new share set of the same secret at version + 1. */
export async function refreshShares(current: ShareSetDescriptor, root: Hex, shares: readonly VaultShare[], opts: RefreshOptions = {}): Promise<ShareSet> {
  if (current.version >= 2n ** 64n - 1n) throw new VaultShareError("INVALID_ARGUMENT", "the share set version cannot grow any further");
  const payload = await combinePayload(current, root, shares);
  try {
    return await splitPayload(current.binding, payload, {
      threshold: opts.threshold ?? current.threshold,
      shareCount: opts.shareCount ?? current.shareCount,
      version: current.version + 1n,
    });
  } finally {
    payload.fill(0);
  }
}
