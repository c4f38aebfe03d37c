/**
 * Share envelopes: every share that leaves the owner or an enclave is HPKE
 * sealed (src/crypto/hpke.ts) to one recipient key, for one purpose:
 *
 * - store:    the owner seals share i to the HPKE key of the enclave at slot i;
 * - transfer: an enclave sends its share to another attested enclave (a peer
 *             at the same slot of another cluster, or the refresh dealer);
 * - retrieve: a slot enclave answers one signed retrieval request, sealed to
 *             the owner's ephemeral key, and `info` also binds the request's
 *             EIP-712 digest (single shot).
 *
 * Store and transfer envelopes come from an HPKE context (RFC 9180 §5.2)
 * whose `info` binds the purpose, chain id and vault contract: a batch of
 * shares for one recipient (an owner's batch for one slot, a page for one
 * peer) costs one X25519 exchange, and each share is one message of it, with
 * its address (token id, share set version, slot) as AAD and its sequence
 * number carried in the envelope (`seq`). So hosts relay only ciphertext,
 * and an envelope replayed into another token, version, slot, purpose,
 * vault, recipient or sequence number does not open (WRONG_BINDING). The
 * plaintext is salt (32 bytes) || share; the slot is not in it, it comes from
 * the address the envelope opened under.
 */
import { encodeAbiParameters, hexToBytes, type Hex } from "viem";
import { CryptoError } from "../crypto/errors.ts";
import { openContextWith, openWith, sealContextTo, sealTo, type HpkeOpeningContext, type HpkeSealed, type HpkeSealingContext } from "../crypto/hpke.ts";
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

/** A store or transfer envelope: one message of an HPKE context, `seq` its sequence number there. */
export interface ShareEnvelope extends HpkeSealed {
  seq: number;
}

/** The AAD of a share's message: where it belongs. */
function addressAad(a: ShareAddress): Uint8Array {
  return hexToBytes(encodeAbiParameters([{ type: "uint256" }, { type: "uint64" }, { type: "uint8" }], [a.binding.tokenId, a.version, a.slot]));
}

/** HPKE info of a store or transfer context: the purpose, and the chain and vault every share of it belongs to. */
export function shareContextInfo(purpose: EnvelopePurpose, chainId: bigint, vault: Hex): Uint8Array {
  const body = encodeAbiParameters([{ type: "uint256" }, { type: "address" }], [chainId, vault]);
  return tagged(purpose === "store" ? DOMAIN.vaultStore : DOMAIN.vaultTransfer, body);
}

function sameVault(a: VaultBinding, b: VaultBinding): boolean {
  return a.chainId === b.chainId && a.vault.toLowerCase() === b.vault.toLowerCase();
}

/**
 * Seals shares for one recipient key under one HPKE context (one X25519 exchange for all of them): what the
 * owner does for a batch's shares of one slot, and an enclave for a page it exports to a peer.
 */
export class ShareSealer {
  readonly #recipient: Uint8Array;
  readonly #purpose: EnvelopePurpose;
  #context: { vault: VaultBinding; hpke: HpkeSealingContext } | undefined;

  constructor(recipientPublicKey: Uint8Array, purpose: EnvelopePurpose) {
    this.#recipient = recipientPublicKey;
    this.#purpose = purpose;
  }

  seal(a: ShareAddress, share: VaultShare): ShareEnvelope {
    checkSlot(a, share);
    // One context per chain and vault (its info binds them); a batch normally has one.
    if (!this.#context || !sameVault(this.#context.vault, a.binding)) {
      this.#context = { vault: a.binding, hpke: sealContextTo(this.#recipient, shareContextInfo(this.#purpose, a.binding.chainId, a.binding.vault)) };
    }
    const { seq, ciphertext } = this.#context.hpke.seal(encodePayload(share), addressAad(a));
    return { enc: this.#context.hpke.enc, ciphertext, seq };
  }
}

/**
 * Opens store or transfer envelopes with one private key, decapsulating each distinct `enc` (one batch's
 * context) once. Keep one per call that receives a batch; its contexts go with it.
 */
export class ShareOpener {
  readonly #privateKey: Uint8Array;
  readonly #purpose: EnvelopePurpose;
  readonly #contexts = new Map<string, HpkeOpeningContext>();

  constructor(privateKey: Uint8Array, purpose: EnvelopePurpose) {
    this.#privateKey = privateKey;
    this.#purpose = purpose;
  }

  /** The share sealed for `a`, not checked against its commitment yet (see openVerifiedShare). */
  open(a: ShareAddress, sealed: ShareEnvelope): VaultShare {
    try {
      const id = `${a.binding.chainId}:${a.binding.vault.toLowerCase()}:${Buffer.from(sealed.enc).toString("hex")}`;
      let context = this.#contexts.get(id);
      if (!context) {
        context = openContextWith(this.#privateKey, sealed.enc, shareContextInfo(this.#purpose, a.binding.chainId, a.binding.vault));
        this.#contexts.set(id, context);
      }
      return decodePayload(a.slot, context.open(sealed.seq, sealed.ciphertext, addressAad(a)));
    } catch (cause) {
      if (!(cause instanceof CryptoError)) throw cause;
      throw wrongBinding(a, cause);
    }
  }

  /**
   * What the enclave that stores a share and the peer that fetches one run: open the envelope for (token,
   * version, slot) of `d`, then check the share against its commitment, `d` against the chain's `root`.
   */
  openVerified(d: ShareSetDescriptor, root: Hex, slot: number, sealed: ShareEnvelope): VaultShare {
    const share = this.open({ binding: d.binding, version: d.version, slot }, sealed);
    verifyShare(d, root, share);
    return share;
  }
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

function wrongBinding(a: ShareAddress, cause: CryptoError): VaultShareError {
  return new VaultShareError("WRONG_BINDING", `the share envelope does not open as token ${a.binding.tokenId}, version ${a.version}, slot ${a.slot} for this key: it was sealed for another one, or altered`, {
    cause,
    details: { tokenId: String(a.binding.tokenId), version: String(a.version), slot: a.slot },
  });
}

/** Seals one share to the enclave at its slot (store) or to another attested enclave (transfer): a context of one message. */
export async function sealShare(recipientPublicKey: Uint8Array, purpose: EnvelopePurpose, a: ShareAddress, share: VaultShare): Promise<ShareEnvelope> {
  return new ShareSealer(recipientPublicKey, purpose).seal(a, share);
}

/** One sealed share as a host relays it to the enclave at `slot`. */
export interface SlotEnvelope extends ShareEnvelope {
  slot: number;
}

/**
 * Seals every share of a set to the HPKE key of the enclave at its slot
 * (`slotKeys[i]` for slot i): what the refresh dealer does to hand out a new
 * version, and the owner to store one secret (a batch keeps one ShareSealer per slot instead).
 */
export async function sealShareSet(set: ShareSet, slotKeys: readonly Uint8Array[], purpose: EnvelopePurpose): Promise<SlotEnvelope[]> {
  if (slotKeys.length !== set.shares.length) {
    throw new VaultShareError("INVALID_ARGUMENT", `a cluster of ${slotKeys.length} slots cannot hold a set of ${set.shares.length} shares`, { details: { slots: slotKeys.length, shares: set.shares.length } });
  }
  const { binding, version } = set.descriptor;
  return set.shares.map((share) => ({ slot: share.slot, ...new ShareSealer(slotKeys[share.slot]!, purpose).seal({ binding, version, slot: share.slot }, share) }));
}

/** Opens one store or transfer envelope addressed to `a`. The share is not checked yet: see openVerifiedShare. */
export async function openShare(privateKey: Uint8Array, purpose: EnvelopePurpose, a: ShareAddress, sealed: ShareEnvelope): Promise<VaultShare> {
  return new ShareOpener(privateKey, purpose).open(a, sealed);
}

/** ShareOpener.openVerified for one envelope (a batch keeps one ShareOpener for all of its envelopes). */
export async function openVerifiedShare(privateKey: Uint8Array, purpose: EnvelopePurpose, d: ShareSetDescriptor, root: Hex, slot: number, sealed: ShareEnvelope): Promise<VaultShare> {
  return new ShareOpener(privateKey, purpose).openVerified(d, root, slot, sealed);
}

/** The slot enclave's answer to one verified retrieval request, sealed to the owner's ephemeral key. */
export async function sealRetrievalResponse(ownerKey: Uint8Array, a: ShareAddress, requestDigest: Hex, share: VaultShare): Promise<HpkeSealed> {
  checkSlot(a, share);
  return sealTo(ownerKey, encodePayload(share), { info: retrievalResponseInfo(a, requestDigest) });
}

/** The owner opens one response with the ephemeral private key of the request it signed. */
export async function openRetrievalResponse(ephemeralPrivateKey: Uint8Array, a: ShareAddress, requestDigest: Hex, sealed: HpkeSealed): Promise<VaultShare> {
  try {
    return decodePayload(a.slot, await openWith(ephemeralPrivateKey, sealed.enc, sealed.ciphertext, { info: retrievalResponseInfo(a, requestDigest) }));
  } catch (cause) {
    if (!(cause instanceof CryptoError)) throw cause;
    throw wrongBinding(a, cause);
  }
}
