/**
 * The EIP-712 messages SecretVault checks: a slot enclave's confirmation of the
 * shares it holds, and a cluster's re-share of a token. Must match the
 * typehashes and the EIP712 domain in contracts/SecretVault.sol. `sharesRoot`
 * is the root src/protocol/vault-shares.ts computes for the token's version.
 */
import type { Address, Hex } from "viem";

/** The same domain as the owner's retrieval request (vault-retrieval.ts, defaultVaultDomainName). */
export const vaultContractDomainName = "Cloister Vault";
export const vaultContractDomainVersion = "1";

export function vaultContractDomain(chainId: bigint, vault: Address) {
  return { name: vaultContractDomainName, version: vaultContractDomainVersion, chainId, verifyingContract: vault } as const;
}

export const confirmationTypes = {
  Confirmation: [
    { name: "cluster", type: "uint64" },
    { name: "epoch", type: "uint32" },
    { name: "slot", type: "uint8" },
    { name: "shares", type: "Share[]" },
  ],
  Share: [
    { name: "tokenId", type: "uint256" },
    { name: "version", type: "uint64" },
    { name: "sharesRoot", type: "bytes32" },
  ],
} as const;

/** One token whose share the signing enclave holds, at that version and commitment. */
export interface ConfirmedShare {
  tokenId: bigint;
  version: bigint;
  sharesRoot: Hex;
}

/** Signed by the enclave at `slot` of `cluster`; `epoch` is the cluster's membership epoch. */
export interface ShareConfirmation {
  cluster: bigint;
  epoch: number;
  slot: number;
  shares: ConfirmedShare[];
}

export const reshareTypes = {
  Reshare: [
    { name: "tokenId", type: "uint256" },
    { name: "version", type: "uint64" },
    { name: "sharesRoot", type: "bytes32" },
    { name: "newSharesRoot", type: "bytes32" },
    { name: "cluster", type: "uint64" },
    { name: "epoch", type: "uint32" },
  ],
} as const;

/** Signed by at least k enclaves of `cluster`: the shares at `version` (root `sharesRoot`) are replaced. */
export interface Reshare {
  tokenId: bigint;
  version: bigint;
  sharesRoot: Hex;
  newSharesRoot: Hex;
  cluster: bigint;
  epoch: number;
}

/**
 * Storage slots of SecretVault's mappings (Solidity layout; test/contracts/vault.test.ts pins them), for an
 * enclave that proves state with eth_getProof (src/enclave/chain-view/) instead of trusting its host's calls.
 * `owners` is ERC-721's tokenId → owner. A `secrets` entry is two words: word 0 packs threshold (byte 0),
 * shares (byte 1), version (bytes 2..9) and burned (byte 10), low-order first; word 1 is sharesRoot.
 * `memberAt` is cluster → slot → enclave. A `syncs` entry (token → cluster) packs version (bytes 0..7), the
 * epoch it was last written under (8..11), the mask of confirmed slots (12..15) and synced (16). `slotSince`
 * (cluster → slot → the epoch its current member took it) is declared last: a confirmation recorded under
 * epoch e by slot i counts while slotSince ≤ e.
 */
export const vaultStorageSlots = { owners: 2n, memberAt: 11n, secrets: 13n, syncs: 14n, slotSince: 15n } as const;
