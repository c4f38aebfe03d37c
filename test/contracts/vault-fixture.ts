/** A SecretVault on the contracts fixture's chain, with helpers to build clusters, store secrets and sign confirmations. */
import type { Address, Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { deploySecretVault } from "../../src/chain/deploy.ts";
import { createCluster } from "../../src/chain/actions/create-cluster.ts";
import { storeSecret } from "../../src/chain/actions/store-secret.ts";
import { readCluster } from "../../src/chain/actions/read-cluster.ts";
import { readSecret } from "../../src/chain/actions/read-secret.ts";
import type { SignedShareConfirmation } from "../../src/chain/actions/confirm-shares.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { confirmationTypes, reshareTypes, vaultContractDomain, type ConfirmedShare, type Reshare } from "../../src/protocol/vault-contract.ts";
import { newEnclave, randomDigest, register, startFixture, type Fixture, type TestEnclave } from "./fixture.ts";

export interface VaultFixture extends Fixture {
  vault: Address;
  /** Holds CLUSTER_ADMIN_ROLE and DEFAULT_ADMIN_ROLE (the deployer). */
  admin: WriterClient;
  /** Stores secrets. */
  owner: WriterClient;
  /** Relays confirmations; holds no role. */
  relayer: WriterClient;
}

export async function startVault(): Promise<VaultFixture> {
  const f = await startFixture();
  const { address } = await deploySecretVault(f.deployer, { registry: f.deployment.registry });
  return { ...f, vault: address, admin: f.deployer, owner: f.requester, relayer: f.operators[1]! };
}

/** Registers `size` fresh enclaves (operator 0) and makes them a cluster. */
export async function makeCluster(v: VaultFixture, size = 5): Promise<{ cluster: bigint; enclaves: TestEnclave[] }> {
  const enclaves = Array.from({ length: size }, () => newEnclave());
  for (const e of enclaves) await register(v, e, v.chain.accounts.operators[0]!.address);
  const { cluster } = await createCluster(v.admin, v.vault, enclaves.map((e) => e.address));
  return { cluster, enclaves };
}

/** Stores a fresh 3-of-5 (by default) secret as `v.owner`. */
export async function storeToken(v: VaultFixture, threshold = 3, shares = 5, owner = v.owner): Promise<{ tokenId: bigint; sharesRoot: Hex; gasUsed: bigint }> {
  const sharesRoot = randomDigest();
  const { tokenId, gasUsed } = await storeSecret(owner, v.vault, { salt: randomDigest(), threshold, shares, sharesRoot });
  return { tokenId, sharesRoot, gasUsed };
}

export function signShares(v: VaultFixture, signer: PrivateKeyAccount, cluster: bigint, epoch: number, slot: number, shares: ConfirmedShare[]): Promise<Hex> {
  return signer.signTypedData({
    domain: vaultContractDomain(BigInt(v.chain.chainId), v.vault),
    types: confirmationTypes,
    primaryType: "Confirmation",
    message: { cluster, epoch, slot, shares },
  });
}

/** The confirmation of `tokens` (at their current version and root) by `enclave` at `slot`, at the cluster's current epoch. */
export async function confirmationBy(v: VaultFixture, enclave: TestEnclave, cluster: bigint, slot: number, tokens: bigint[]): Promise<SignedShareConfirmation> {
  const { epoch } = await readCluster(v.reader, v.vault, cluster);
  const shares = await Promise.all(tokens.map(async (tokenId) => {
    const s = await readSecret(v.reader, v.vault, tokenId);
    return { tokenId, version: s.version, sharesRoot: s.sharesRoot };
  }));
  const signature = await signShares(v, enclave.account, cluster, epoch, slot, shares);
  return { cluster, slot, shares: shares.map(({ tokenId, version }) => ({ tokenId, version })), signature };
}

/** Every slot's confirmation of `tokens`, slot order. */
export function clusterConfirmations(v: VaultFixture, cluster: bigint, enclaves: TestEnclave[], tokens: bigint[]): Promise<SignedShareConfirmation[]> {
  return Promise.all(enclaves.map((e, slot) => confirmationBy(v, e, cluster, slot, tokens)));
}

export function signReshare(v: VaultFixture, signer: PrivateKeyAccount, reshare: Reshare): Promise<Hex> {
  return signer.signTypedData({ domain: vaultContractDomain(BigInt(v.chain.chainId), v.vault), types: reshareTypes, primaryType: "Reshare", message: reshare });
}
