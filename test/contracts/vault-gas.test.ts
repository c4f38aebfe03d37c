/**
 * Gas of SecretVault's writes, as docs/vault.md reports them: store (alone and
 * 100 in one storeBatch), one
 * confirmation (first, middle and the last slot, which syncs), one enclave
 * confirming 10 and 50 tokens with one signature, a whole cluster syncing 10
 * and 50 tokens in one call, a replacement and the new member re-syncing 1
 * and 50 tokens alone, a re-share and a burn. The bounds are loose
 * ceilings so that a regression fails; the figures are printed as diagnostics.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { burnSecret } from "../../src/chain/actions/burn-secret.ts";
import { confirmShares } from "../../src/chain/actions/confirm-shares.ts";
import { createCluster } from "../../src/chain/actions/create-cluster.ts";
import { readCluster } from "../../src/chain/actions/read-cluster.ts";
import { replaceClusterMember } from "../../src/chain/actions/replace-cluster-member.ts";
import { reshareSecret } from "../../src/chain/actions/reshare-secret.ts";
import { storeSecrets } from "../../src/chain/actions/store-secret.ts";
import { deploySecretVault } from "../../src/chain/deploy.ts";
import { newEnclave, randomDigest, register } from "./fixture.ts";
import { clusterConfirmations, confirmationBy, makeCluster, signReshare, startVault, storeToken, type VaultFixture } from "./vault-fixture.ts";

let v: VaultFixture;
let cluster: bigint;
let enclaves: ReturnType<typeof newEnclave>[];

before(async () => {
  v = await startVault();
  ({ cluster, enclaves } = await makeCluster(v));
});
after(() => v.close());

function record(t: { diagnostic(message: string): void }, name: string, gas: bigint, ceiling: bigint): void {
  t.diagnostic(`${name}: ${gas} gas`);
  assert.ok(gas <= ceiling, `${name} used ${gas} gas, more than ${ceiling}`);
}

async function tokens(count: number): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) ids.push((await storeToken(v)).tokenId);
  return ids;
}

test("deploy and cluster creation", async (t) => {
  const { gasUsed } = await deploySecretVault(v.deployer, { registry: v.deployment.registry });
  record(t, "deploy", gasUsed, 3_600_000n);
  const members = Array.from({ length: 5 }, () => newEnclave());
  for (const e of members) await register(v, e, v.chain.accounts.operators[0]!.address);
  const created = await createCluster(v.admin, v.vault, members.map((e) => e.address));
  record(t, "createCluster (5 slots)", created.gasUsed, 400_000n);
});

test("store", async (t) => {
  record(t, "store", (await storeToken(v)).gasUsed, 120_000n);
  const batch = Array.from({ length: 100 }, () => ({ salt: randomDigest(), threshold: 3, shares: 5, sharesRoot: randomDigest() }));
  record(t, "storeBatch of 100: per token", (await storeSecrets(v.owner, v.vault, batch)).gasUsed / 100n, 100_000n);
});

test("one confirmation per transaction: first slot, middle slot, last slot (sync)", async (t) => {
  const [tokenId] = await tokens(1);
  const all = await clusterConfirmations(v, cluster, enclaves, [tokenId!]);
  const gas = [];
  for (const c of all) gas.push((await confirmShares(v.relayer, v.vault, [c])).gasUsed);
  record(t, "confirm 1 token, first slot", gas[0]!, 90_000n);
  record(t, "confirm 1 token, middle slot", gas[2]!, 70_000n);
  record(t, "confirm 1 token, last slot (SecretSynced)", gas[4]!, 75_000n);
});

test("one enclave, one signature, 10 and 50 tokens", async (t) => {
  for (const n of [10, 50]) {
    const ids = await tokens(n);
    const { gasUsed } = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, enclaves[0]!, cluster, 0, ids)]);
    record(t, `confirm ${n} tokens by 1 enclave, per token`, gasUsed / BigInt(n), 45_000n);
  }
});

test("a whole cluster syncs 1, 10 and 50 tokens in one call", async (t) => {
  for (const n of [1, 10, 50]) {
    const ids = await tokens(n);
    const { gasUsed, receipt } = await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, cluster, enclaves, ids));
    assert.equal(receipt.logs.length, n * 6);
    record(t, `sync ${n} tokens (5 enclaves, 1 call), per token`, gasUsed / BigInt(n), 250_000n);
  }
});

test("after a replacement the new member alone re-syncs: 1 and 50 tokens", async (t) => {
  const c = await makeCluster(v);
  const ids = await tokens(51);
  await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, c.cluster, c.enclaves, ids));
  const replacement = newEnclave();
  await register(v, replacement, v.chain.accounts.operators[0]!.address);
  record(t, "replaceMember", (await replaceClusterMember(v.admin, v.vault, c.cluster, 2, replacement.address)).gasUsed, 110_000n);
  const one = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, replacement, c.cluster, 2, ids.slice(0, 1))]);
  assert.equal(one.receipt.logs.length, 2);
  record(t, "re-sync 1 token after a replacement (new member, SecretSynced)", one.gasUsed, 75_000n);
  const many = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, replacement, c.cluster, 2, ids.slice(1))]);
  assert.equal(many.receipt.logs.length, 100);
  record(t, "re-sync 50 tokens after a replacement (new member, 1 signature), per token", many.gasUsed / 50n, 25_000n);
});

test("re-share (3 signatures) and burn", async (t) => {
  const { tokenId, sharesRoot } = await storeToken(v);
  const { epoch } = await readCluster(v.reader, v.vault, cluster);
  const newSharesRoot = randomDigest();
  const message = { tokenId, version: 1n, sharesRoot, newSharesRoot, cluster, epoch };
  const signatures = await Promise.all([0, 1, 2].map(async (slot) => ({ slot, signature: await signReshare(v, enclaves[slot]!.account, message) })));
  record(t, "reshare (3 of 5)", (await reshareSecret(v.relayer, v.vault, { tokenId, version: 1n, newSharesRoot, cluster, signatures })).gasUsed, 90_000n);
  record(t, "burn", (await burnSecret(v.owner, v.vault, tokenId)).gasUsed, 60_000n);
});
