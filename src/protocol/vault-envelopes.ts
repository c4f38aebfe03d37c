/**
 * Share envelopes: every share that leaves the owner or an enclave is HPKE
 * sealed (src/crypto/hpke.ts) to one recipient key, with an `info` that binds
 * chain id, vault contract, token id, share set version and slot, and the
 * purpose:
 *
 * - store:    the owner seals share i to the HPKE key of the enclave at slot i;
 * - transfer: an enclave sends its share to another attested enclave (a peer
 *             at the same slot of another cluster, or the refresh dealer);
 * - retrieve: a slot enclave answers one signed retrieval request, sealed to
 *             the owner's ephemeral key, and `info` also binds the request's
 *             EIP-712 digest.
 *
 * So hosts relay only ciphertext, and an envelope replayed into another
 * token, version, slot, purpose or request does not open (WRONG_BINDING).
 * The plaintext is salt (32 bytes) || share; the slot is not in it, it comes
 * from the binding the envelope opened under.
 */
import { encodeAbiParameters, type Hex } from "viem";
import { CryptoError } from "../crypto/errors.ts";
import { openWith, sealTo, type HpkeSealed } from "../crypto/hpke.ts";
import { DOMAIN } from "./domains.ts";
import { VaultShareError } from "./vault-errors.ts";
import { SALT_BYTES, verifyShare, type ShareSet, type ShareSetDescriptor, type VaultBinding, type VaultShare } from "./vault-shares.ts";
import { tagged } from "./binding.ts";

/** Where a share belongs: token, share set version and slot. */
export interface ShareAddress {
  binding: VaultBinding;
  version: bigint;
  slot: number;
}

export type EnvelopePurpose = "store" | "transfer";


function addressBody(a: ShareAddress): Hex {
  return encodeAbiParameters(
    [{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "uint64" }, { type: "uint8" }],
    [a.binding.chainId, a.binding.vault, a.binding.tokenId, a.version, a.slot],
  );
}

/** HPKE info of a store or transfer envelope. */
export function shareEnvelopeInfo(purpose: EnvelopePurpose, a: ShareAddress): Uint8Array {
  return tagged(purpose === "store" ? DOMAIN.vaultStore : DOMAIN.vaultTransfer, addressBody(a));
}

/** HPKE info of a share returned to the owner: the share's address and the retrieval request's EIP-712 digest. */
export function retrievalResponseInfo(a: ShareAddress, requestDigest: Hex): Uint8Array {
  const body = encodeAbiParameters(
    [{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "uint64" }, { type: "uint8" }, { type: "bytes32" }],
    [a.binding.chainId, a.binding.vault, a.binding.tokenId, a.version, a.slot, requestDigest],
  );
  return tagged(DOMAIN.vaultRetrieve, body);
}

function encodePayload(share: VaultShare): Uint8Array {
  if (share.salt.length !== SALT_BYTES) throw new VaultShareError("INVALID_ARGUMENT", `a share's salt must be ${SALT_BYTES} bytes`, { details: { slot: share.slot } });
  const out = new Uint8Array(SALT_BYTES + share.share.length);
  out.set(share.salt, 0);
  out.set(share.share, SALT_BYTES);
  return out;
}

function decodePayload(slot: number, plaintext: Uint8Array): VaultShare {
  // At least one secret byte and the x-coordinate after the salt.
  if (plaintext.length < SALT_BYTES + 2) throw new VaultShareError("TAMPERED_SHARE", `the envelope for slot ${slot} holds no share`, { details: { slot } });
  return { slot, salt: plaintext.slice(0, SALT_BYTES), share: plaintext.slice(SALT_BYTES) };
}

function checkSlot(a: ShareAddress, share: VaultShare): void {
  if (share.slot !== a.slot) throw new VaultShareError("INVALID_ARGUMENT", `the share is for slot ${share.slot}, not slot ${a.slot}`, { details: { slot: share.slot, expected: a.slot } });
}

async function open(privateKey: Uint8Array, sealed: HpkeSealed, info: Uint8Array, a: ShareAddress): Promise<Uint8Array> {
  try {
    return await openWith(privateKey, sealed.enc, sealed.ciphertext, { info });
  } catch (cause) {
    if (!(cause instanceof CryptoError)) throw cause;
    throw new VaultShareError("WRONG_BINDING", `the share envelope does not open as token ${a.binding.tokenId}, version ${a.version}, slot ${a.slot} for this key: it was sealed for another one, or altered`, {
      cause,
      details: { tokenId: String(a.binding.tokenId), version: String(a.version), slot: a.slot },
    });
  }
}

/** Seals a share to the enclave at its slot (store) or to another attested enclave (transfer). */
export async function sealShare(recipientPublicKey: Uint8Array, purpose: EnvelopePurpose, a: ShareAddress, share: VaultShare): Promise<HpkeSealed> {
  checkSlot(a, share);
  return sealTo(recipientPublicKey, encodePayload(share), { info: shareEnvelopeInfo(purpose, a) });
}

/** One sealed share as a host relays it to the enclave at `slot`. */
export interface SlotEnvelope extends HpkeSealed {
  slot: number;
}

/**
 * Seals every share of a set to the HPKE key of the enclave at its slot
 * (`slotKeys[i]` for slot i): what the owner does to store a secret in a
 * cluster, and the refresh dealer to hand out a new version.
 */
export async function sealShareSet(set: ShareSet, slotKeys: readonly Uint8Array[], purpose: EnvelopePurpose): Promise<SlotEnvelope[]> {
  if (slotKeys.length !== set.shares.length) {
    throw new VaultShareError("INVALID_ARGUMENT", `a cluster of ${slotKeys.length} slots cannot hold a set of ${set.shares.length} shares`, { details: { slots: slotKeys.length, shares: set.shares.length } });
  }
  const { binding, version } = set.descriptor;
  return Promise.all(set.shares.map(async (share) => ({ slot: share.slot, ...(await sealShare(slotKeys[share.slot]!, purpose, { binding, version, slot: share.slot }, share)) })));
}

/** Opens a store or transfer envelope addressed to `a`. The share is not checked yet: see openVerifiedShare. */
export async function openShare(privateKey: Uint8Array, purpose: EnvelopePurpose, a: ShareAddress, sealed: HpkeSealed): Promise<VaultShare> {
  return decodePayload(a.slot, await open(privateKey, sealed, shareEnvelopeInfo(purpose, a), a));
}

/**
 * What the enclave that stores a share and the peer that fetches one run:
 * open the envelope for (token, version, slot) of `d`, then check the share
 * against its commitment, `d` against the chain's `root`.
 */
export async function openVerifiedShare(privateKey: Uint8Array, purpose: EnvelopePurpose, d: ShareSetDescriptor, root: Hex, slot: number, sealed: HpkeSealed): Promise<VaultShare> {
  const share = await openShare(privateKey, purpose, { binding: d.binding, version: d.version, slot }, sealed);
  verifyShare(d, root, share);
  return share;
}

/** The slot enclave's answer to one verified retrieval request, sealed to the owner's ephemeral key. */
export async function sealRetrievalResponse(ownerKey: Uint8Array, a: ShareAddress, requestDigest: Hex, share: VaultShare): Promise<HpkeSealed> {
  checkSlot(a, share);
  return sealTo(ownerKey, encodePayload(share), { info: retrievalResponseInfo(a, requestDigest) });
}

/** The owner opens one response with the ephemeral private key of the request it signed. */
export async function openRetrievalResponse(ephemeralPrivateKey: Uint8Array, a: ShareAddress, requestDigest: Hex, sealed: HpkeSealed): Promise<VaultShare> {
  return decodePayload(a.slot, await open(ephemeralPrivateKey, sealed, retrievalResponseInfo(a, requestDigest), a));
}
