import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeAbiParameters, hexToBigInt, keccak256, parseEventLogs, zeroHash, type Hex } from "viem";
import { getStorageAt, readContract } from "viem/actions";
import { secretVaultAbi } from "../../src/chain/abi/SecretVault.ts";
import { burnSecret } from "../../src/chain/actions/burn-secret.ts";
import { confirmShares } from "../../src/chain/actions/confirm-shares.ts";
import { createCluster } from "../../src/chain/actions/create-cluster.ts";
import { readCluster } from "../../src/chain/actions/read-cluster.ts";
import { readSecret } from "../../src/chain/actions/read-secret.ts";
import { readSync } from "../../src/chain/actions/read-sync.ts";
import { replaceClusterMember } from "../../src/chain/actions/replace-cluster-member.ts";
import { reshareSecret } from "../../src/chain/actions/reshare-secret.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { writeContractTransaction } from "../../src/chain/actions/send-transaction.ts";
import { secretTokenId, storeSecret, storeSecrets } from "../../src/chain/actions/store-secret.ts";
import { advanceTime, newEnclave, randomDigest, register, rejectsWith } from "./fixture.ts";
import { vaultStorageSlots } from "../../src/protocol/vault-contract.ts";
import { mappingSlot, nestedMappingSlot } from "../../src/enclave/chain-view/slots.ts";
import { VAULT_CLUSTERS_SLOT, VAULT_MEMBERSHIP_SLOT } from "../../src/enclave/vault/chain.ts";
import { clusterConfirmations, confirmationBy, makeCluster, signReshare, signShares, startVault, storeToken, type VaultFixture } from "./vault-fixture.ts";

function slotSince(cluster: bigint, slot: number): Promise<number> {
  return readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "slotSince", args: [cluster, slot] });
}

function events(receipt: { logs: Parameters<typeof parseEventLogs>[0]["logs"] }) {
  return parseEventLogs({ abi: secretVaultAbi, logs: receipt.logs });
}

let v: VaultFixture;

describe("SecretVault", () => {
  let a: { cluster: bigint; enclaves: ReturnType<typeof newEnclave>[] };
  let b: { cluster: bigint; enclaves: ReturnType<typeof newEnclave>[] };
  before(async () => {
    v = await startVault();
    a = await makeCluster(v);
    b = await makeCluster(v);
  });
  after(() => v.close());

  test("store mints to the caller and records k, n, the commitment and version 1", async () => {
    const salt = randomDigest();
    const sharesRoot = randomDigest();
    const { tokenId, receipt } = await storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 5, sharesRoot });
    assert.equal(tokenId, secretTokenId(v.owner.account.address, salt));
    assert.equal(await readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "tokenIdOf", args: [v.owner.account.address, salt] }), tokenId);
    assert.equal(await readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "ownerOf", args: [tokenId] }), v.owner.account.address);
    assert.deepEqual(await readSecret(v.reader, v.vault, tokenId), { tokenId, threshold: 3, shares: 5, version: 1n, burned: false, sharesRoot });
    const stored = events(receipt).find((e) => e.eventName === "SecretStored");
    assert.deepEqual(stored?.args, { tokenId, owner: v.owner.account.address, threshold: 3, shares: 5, sharesRoot });
    assert.ok(events(receipt).some((e) => e.eventName === "Transfer"));
  });

  test("five confirmations sync the first cluster, one batched call syncs the second", async () => {
    const { tokenId } = await storeToken(v);
    const confirmations = await clusterConfirmations(v, a.cluster, a.enclaves, [tokenId]);
    for (const [slot, c] of confirmations.slice(0, 4).entries()) {
      const tx = await confirmShares(v.relayer, v.vault, [c]);
      const evs = events(tx.receipt);
      assert.deepEqual(evs.map((e) => e.eventName), ["ShareConfirmed"]);
      assert.deepEqual(evs[0]!.args, { tokenId, cluster: a.cluster, slot, version: 1n, enclave: a.enclaves[slot]!.address });
    }
    assert.deepEqual(await readSync(v.reader, v.vault, tokenId, a.cluster), { confirmedSlots: [0, 1, 2, 3], synced: false });
    const last = await confirmShares(v.relayer, v.vault, [confirmations[4]!]);
    const synced = events(last.receipt).filter((e) => e.eventName === "SecretSynced");
    assert.deepEqual(synced.map((e) => e.args), [{ tokenId, cluster: a.cluster, version: 1n }]);
    assert.deepEqual(await readSync(v.reader, v.vault, tokenId, a.cluster), { confirmedSlots: [0, 1, 2, 3, 4], synced: true });
    assert.equal((await readSync(v.reader, v.vault, tokenId, b.cluster)).synced, false);

    const second = await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, b.cluster, b.enclaves, [tokenId]));
    const evs = events(second.receipt);
    assert.equal(evs.filter((e) => e.eventName === "ShareConfirmed").length, 5);
    assert.deepEqual(evs.filter((e) => e.eventName === "SecretSynced").map((e) => e.args), [{ tokenId, cluster: b.cluster, version: 1n }]);
  });

  test("one signature confirms many tokens; one call carries several enclaves", async () => {
    const tokens = [(await storeToken(v)).tokenId, (await storeToken(v)).tokenId, (await storeToken(v)).tokenId];
    const tx = await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, a.cluster, a.enclaves, tokens));
    const synced = events(tx.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args.tokenId);
    assert.deepEqual(synced, tokens);
  });

  test("store rejects a bad split, a zero commitment and a used id", async () => {
    const root = randomDigest();
    const salt = randomDigest();
    await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 4, shares: 3, sharesRoot: root }), "InvalidShares");
    await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 1, shares: 3, sharesRoot: root }), "InvalidShares");
    await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 33, sharesRoot: root }), "InvalidShares");
    await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 5, sharesRoot: zeroHash }), "ZeroSharesRoot");
    const { tokenId } = await storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 5, sharesRoot: root });
    const err = await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 5, sharesRoot: root }), "TokenIdUsed");
    assert.equal(err.args.tokenId, tokenId);
    await burnSecret(v.owner, v.vault, tokenId);
    await rejectsWith(storeSecret(v.owner, v.vault, { salt, threshold: 3, shares: 5, sharesRoot: root }), "TokenIdUsed");
  });

  test("storeBatch mints many tokens to the caller in one call, each recorded as store would", async () => {
    const items = Array.from({ length: 3 }, (_, i) => ({ salt: randomDigest(), threshold: 2 + i, shares: 5, sharesRoot: randomDigest() }));
    const { tokenIds, receipt } = await storeSecrets(v.owner, v.vault, items);
    assert.deepEqual(tokenIds, items.map((i) => secretTokenId(v.owner.account.address, i.salt)));
    for (const [i, tokenId] of tokenIds.entries()) {
      assert.equal(await readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "ownerOf", args: [tokenId] }), v.owner.account.address);
      assert.deepEqual(await readSecret(v.reader, v.vault, tokenId), { tokenId, threshold: items[i]!.threshold, shares: 5, version: 1n, burned: false, sharesRoot: items[i]!.sharesRoot });
    }
    const stored = events(receipt).filter((e) => e.eventName === "SecretStored");
    assert.deepEqual(stored.map((e) => e.args.tokenId), tokenIds);
  });

  test("storeBatch is all or nothing: one bad item reverts it with that item's error; an empty batch reverts", async () => {
    const good = { salt: randomDigest(), threshold: 3, shares: 5, sharesRoot: randomDigest() };
    await rejectsWith(storeSecrets(v.owner, v.vault, []), "EmptyBatch");
    await rejectsWith(storeSecrets(v.owner, v.vault, [good, { ...good, salt: randomDigest(), threshold: 6 }]), "InvalidShares");
    await rejectsWith(storeSecrets(v.owner, v.vault, [good, { ...good, salt: randomDigest(), sharesRoot: zeroHash }]), "ZeroSharesRoot");
    const err = await rejectsWith(storeSecrets(v.owner, v.vault, [good, good]), "TokenIdUsed");
    assert.equal(err.args.tokenId, secretTokenId(v.owner.account.address, good.salt));
    // Nothing of a reverted batch was recorded: its first item can still be stored.
    assert.equal((await readSecret(v.reader, v.vault, secretTokenId(v.owner.account.address, good.salt))).threshold, 0);
    await storeSecrets(v.owner, v.vault, [good]);
  });

  test("only the cluster admin creates clusters, of active enclaves in no other cluster", async () => {
    const fresh = Array.from({ length: 3 }, () => newEnclave());
    for (const e of fresh) await register(v, e, v.chain.accounts.operators[0]!.address);
    const members = fresh.map((e) => e.address);
    const err = await rejectsWith(createCluster(v.relayer, v.vault, members), "AccessControlUnauthorizedAccount");
    assert.equal(err.args.account, v.relayer.account.address);
    await rejectsWith(createCluster(v.admin, v.vault, []), "InvalidClusterSize");
    await rejectsWith(createCluster(v.admin, v.vault, [members[0]!]), "InvalidClusterSize");
    await rejectsWith(createCluster(v.admin, v.vault, Array.from({ length: 33 }, () => newEnclave().address)), "InvalidClusterSize");
    const unregistered = newEnclave().address;
    assert.equal((await rejectsWith(createCluster(v.admin, v.vault, [...members, unregistered]), "EnclaveInactive")).args.enclave, unregistered);
    assert.equal((await rejectsWith(createCluster(v.admin, v.vault, [members[0]!, members[0]!]), "EnclaveAlreadyMember")).args.enclave, members[0]);
    await rejectsWith(createCluster(v.admin, v.vault, [...members, a.enclaves[0]!.address]), "EnclaveAlreadyMember");
    const revoked = newEnclave();
    await register(v, revoked, v.chain.accounts.operators[0]!.address);
    await revokeEnclave(v.attester, v.deployment.registry, revoked.address);
    await rejectsWith(createCluster(v.admin, v.vault, [...members, revoked.address]), "EnclaveInactive");
    const { cluster } = await createCluster(v.admin, v.vault, members);
    assert.deepEqual(await readCluster(v.reader, v.vault, cluster), { cluster, size: 3, epoch: 0, members });
  });

  test("confirmation reverts: unknown cluster, bad slot, empty batch, non-slot enclave, bad signature", async () => {
    const { tokenId } = await storeToken(v);
    const good = await confirmationBy(v, a.enclaves[0]!, a.cluster, 0, [tokenId]);
    await rejectsWith(confirmShares(v.relayer, v.vault, []), "EmptyBatch");
    await rejectsWith(confirmShares(v.relayer, v.vault, [{ ...good, shares: [] }]), "EmptyBatch");
    await rejectsWith(confirmShares(v.relayer, v.vault, [{ ...good, cluster: 999n }]), "UnknownCluster");
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, a.enclaves[0]!, a.cluster, 5, [tokenId])]), "InvalidSlot");
    // An enclave of another cluster, and one in no cluster, signing for slot 0 of cluster a.
    const other = await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, b.enclaves[0]!, a.cluster, 0, [tokenId])]), "NotSlotEnclave");
    assert.equal(other.args.signer, b.enclaves[0]!.address);
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, newEnclave(), a.cluster, 0, [tokenId])]), "NotSlotEnclave");
    // The right enclave at the wrong slot.
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, a.enclaves[0]!, a.cluster, 1, [tokenId])]), "NotSlotEnclave");
    // A malformed signature, and a signature over other data (another commitment).
    await rejectsWith(confirmShares(v.relayer, v.vault, [{ ...good, signature: "0x1234" }]), "InvalidSignature");
    const forged = await signShares(v, a.enclaves[0]!.account, a.cluster, 0, 0, [{ tokenId, version: 1n, sharesRoot: randomDigest() }]);
    const err = await rejectsWith(confirmShares(v.relayer, v.vault, [{ ...good, signature: forged }]), "NotSlotEnclave");
    assert.notEqual(err.args.signer, a.enclaves[0]!.address);
    // A relayer cannot move a signature to another token.
    const { tokenId: otherToken } = await storeToken(v);
    await rejectsWith(confirmShares(v.relayer, v.vault, [{ ...good, shares: [{ tokenId: otherToken, version: 1n }] }]), "NotSlotEnclave");
    await confirmShares(v.relayer, v.vault, [good]);
  });

  test("confirmation reverts: replay, wrong version, unknown or burned token, size mismatch", async () => {
    const { tokenId } = await storeToken(v);
    const good = await confirmationBy(v, a.enclaves[1]!, a.cluster, 1, [tokenId]);
    await confirmShares(v.relayer, v.vault, [good]);
    const replay = await rejectsWith(confirmShares(v.relayer, v.vault, [good]), "AlreadyConfirmed");
    assert.deepEqual(replay.args, { tokenId, cluster: a.cluster, slot: 1 });
    // The same confirmation twice in one call.
    const { tokenId: t2 } = await storeToken(v);
    const twice = await confirmationBy(v, a.enclaves[1]!, a.cluster, 1, [t2]);
    await rejectsWith(confirmShares(v.relayer, v.vault, [twice, twice]), "AlreadyConfirmed");

    const { epoch } = await readCluster(v.reader, v.vault, a.cluster);
    const sharesRoot = (await readSecret(v.reader, v.vault, t2)).sharesRoot;
    const v2 = await signShares(v, a.enclaves[2]!.account, a.cluster, epoch, 2, [{ tokenId: t2, version: 2n, sharesRoot }]);
    const wrong = await rejectsWith(confirmShares(v.relayer, v.vault, [{ cluster: a.cluster, slot: 2, shares: [{ tokenId: t2, version: 2n }], signature: v2 }]), "WrongVersion");
    assert.deepEqual(wrong.args, { tokenId: t2, given: 2n, current: 1n });

    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, a.enclaves[2]!, a.cluster, 2, [12345n])]), "UnknownToken");
    const burned = await confirmationBy(v, a.enclaves[2]!, a.cluster, 2, [t2]);
    await burnSecret(v.owner, v.vault, t2);
    await rejectsWith(confirmShares(v.relayer, v.vault, [burned]), "UnknownToken");

    const { tokenId: threeOfFour } = await storeToken(v, 3, 4);
    const mismatch = await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, a.enclaves[0]!, a.cluster, 0, [threeOfFour])]), "ClusterSizeMismatch");
    assert.equal(mismatch.args.size, 5);
  });

  test("a revoked or expired slot enclave cannot confirm", async () => {
    const c = await makeCluster(v, 2);
    const { tokenId } = await storeToken(v, 2, 2);
    const confirmations = await clusterConfirmations(v, c.cluster, c.enclaves, [tokenId]);
    await revokeEnclave(v.attester, v.deployment.registry, c.enclaves[0]!.address);
    const err = await rejectsWith(confirmShares(v.relayer, v.vault, [confirmations[0]!]), "EnclaveInactive");
    assert.equal(err.args.enclave, c.enclaves[0]!.address);

    const short = newEnclave();
    await register(v, short, v.chain.accounts.operators[0]!.address, { ttl: 60n });
    const long = newEnclave();
    await register(v, long, v.chain.accounts.operators[0]!.address);
    const { cluster } = await createCluster(v.admin, v.vault, [short.address, long.address]);
    const late = await confirmationBy(v, short, cluster, 0, [tokenId]);
    await advanceTime(v, 120n);
    await rejectsWith(confirmShares(v.relayer, v.vault, [late]), "EnclaveInactive");
  });

  test("replacing slot 2 invalidates only slot 2's confirmations: the new member alone re-syncs", async () => {
    const c = await makeCluster(v);
    const { tokenId } = await storeToken(v);
    const { tokenId: partial } = await storeToken(v);
    await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, c.cluster, c.enclaves, [tokenId]));
    const before = await clusterConfirmations(v, c.cluster, c.enclaves, [partial]);
    await confirmShares(v.relayer, v.vault, before.slice(0, 2));
    const replacement = newEnclave();
    await register(v, replacement, v.chain.accounts.operators[0]!.address);

    await rejectsWith(replaceClusterMember(v.relayer, v.vault, c.cluster, 2, replacement.address), "AccessControlUnauthorizedAccount");
    await rejectsWith(replaceClusterMember(v.admin, v.vault, 999n, 2, replacement.address), "UnknownCluster");
    await rejectsWith(replaceClusterMember(v.admin, v.vault, c.cluster, 5, replacement.address), "InvalidSlot");
    await rejectsWith(replaceClusterMember(v.admin, v.vault, c.cluster, 2, newEnclave().address), "EnclaveInactive");
    await rejectsWith(replaceClusterMember(v.admin, v.vault, c.cluster, 2, a.enclaves[0]!.address), "EnclaveAlreadyMember");
    const tx = await replaceClusterMember(v.admin, v.vault, c.cluster, 2, replacement.address);
    assert.deepEqual(events(tx.receipt).map((e) => e.args), [{ cluster: c.cluster, slot: 2, previous: c.enclaves[2]!.address, enclave: replacement.address, epoch: 1 }]);
    assert.equal(await slotSince(c.cluster, 2), 1);
    assert.equal(await slotSince(c.cluster, 3), 0);
    // The unchanged members' confirmations still count; the replaced slot's does not.
    assert.deepEqual(await readSync(v.reader, v.vault, tokenId, c.cluster), { confirmedSlots: [0, 1, 3, 4], synced: false });
    assert.deepEqual(await readSync(v.reader, v.vault, partial, c.cluster), { confirmedSlots: [0, 1], synced: false });

    // Signed under epoch 0: refused (the digest no longer matches).
    await rejectsWith(confirmShares(v.relayer, v.vault, [before[3]!]), "NotSlotEnclave");
    // The replaced enclave, under the new epoch: no longer at its slot, and never admitted again.
    const old = await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[2]!, c.cluster, 2, [tokenId])]), "NotSlotEnclave");
    assert.equal(old.args.signer, c.enclaves[2]!.address);
    await rejectsWith(replaceClusterMember(v.admin, v.vault, c.cluster, 3, c.enclaves[2]!.address), "EnclaveAlreadyMember");
    // An unchanged member confirming again under the new epoch is a replay.
    const replay = await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[0]!, c.cluster, 0, [tokenId])]), "AlreadyConfirmed");
    assert.deepEqual(replay.args, { tokenId, cluster: c.cluster, slot: 0 });

    const resync = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, replacement, c.cluster, 2, [tokenId])]);
    assert.deepEqual(events(resync.receipt).map((e) => e.eventName), ["ShareConfirmed", "SecretSynced"]);
    assert.deepEqual(events(resync.receipt)[1]!.args, { tokenId, cluster: c.cluster, version: 1n });
    assert.deepEqual(await readSync(v.reader, v.vault, tokenId, c.cluster), { confirmedSlots: [0, 1, 2, 3, 4], synced: true });
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[1]!, c.cluster, 1, [tokenId])]), "AlreadyConfirmed");

    // The partly confirmed token: its record moves to the new epoch with its two still-valid slots.
    await confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[3]!, c.cluster, 3, [partial])]);
    assert.deepEqual(await readSync(v.reader, v.vault, partial, c.cluster), { confirmedSlots: [0, 1, 3], synced: false });
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[0]!, c.cluster, 0, [partial])]), "AlreadyConfirmed");
    const rest = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, replacement, c.cluster, 2, [partial]), await confirmationBy(v, c.enclaves[4]!, c.cluster, 4, [partial])]);
    assert.deepEqual(events(rest.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args), [{ tokenId: partial, cluster: c.cluster, version: 1n }]);
  });

  test("replacements in a row: each drops its own slot, whatever epoch a token's record was last written under", async () => {
    const c = await makeCluster(v);
    const [r1, r2, r3] = [newEnclave(), newEnclave(), newEnclave()];
    for (const e of [r1, r2, r3]) await register(v, e, v.chain.accounts.operators[0]!.address);
    const tA = (await storeToken(v)).tokenId;
    const tB = (await storeToken(v)).tokenId;
    await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, c.cluster, c.enclaves, [tA, tB]));

    await replaceClusterMember(v.admin, v.vault, c.cluster, 2, r1.address);
    await confirmShares(v.relayer, v.vault, [await confirmationBy(v, r1, c.cluster, 2, [tB])]);
    assert.equal((await readSync(v.reader, v.vault, tB, c.cluster)).synced, true);
    const second = await replaceClusterMember(v.admin, v.vault, c.cluster, 4, r3.address);
    assert.deepEqual(events(second.receipt).map((e) => e.args), [{ cluster: c.cluster, slot: 4, previous: c.enclaves[4]!.address, enclave: r3.address, epoch: 2 }]);
    // tA was last written under epoch 0 (slots 2 and 4 changed since), tB under epoch 1 (slot 4 changed since).
    assert.deepEqual(await readSync(v.reader, v.vault, tA, c.cluster), { confirmedSlots: [0, 1, 3], synced: false });
    assert.deepEqual(await readSync(v.reader, v.vault, tB, c.cluster), { confirmedSlots: [0, 1, 2, 3], synced: false });

    // One signature of the new slot 4 over both: only tB is complete.
    const both = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, r3, c.cluster, 4, [tA, tB])]);
    assert.deepEqual(events(both.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args.tokenId), [tB]);
    assert.deepEqual(await readSync(v.reader, v.vault, tA, c.cluster), { confirmedSlots: [0, 1, 3, 4], synced: false });
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[4]!, c.cluster, 4, [tA])]), "NotSlotEnclave");
    const a2 = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, r1, c.cluster, 2, [tA])]);
    assert.deepEqual(events(a2.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args.tokenId), [tA]);

    // Slot 2 replaced again: r1's confirmations (written under epochs 1 and 2) stop counting, the others stay.
    await replaceClusterMember(v.admin, v.vault, c.cluster, 2, r2.address);
    assert.equal(await slotSince(c.cluster, 2), 3);
    for (const t of [tA, tB]) assert.deepEqual(await readSync(v.reader, v.vault, t, c.cluster), { confirmedSlots: [0, 1, 3, 4], synced: false });
    await rejectsWith(confirmShares(v.relayer, v.vault, [await confirmationBy(v, r1, c.cluster, 2, [tA])]), "NotSlotEnclave");
    const last = await confirmShares(v.relayer, v.vault, [await confirmationBy(v, r2, c.cluster, 2, [tA, tB])]);
    assert.deepEqual(events(last.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args.tokenId), [tA, tB]);
  });

  test("a re-share signed by k slot enclaves bumps the version and the clusters sync it again", async () => {
    const { tokenId, sharesRoot } = await storeToken(v);
    await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, a.cluster, a.enclaves, [tokenId]));
    const { epoch } = await readCluster(v.reader, v.vault, a.cluster);
    const newSharesRoot = randomDigest();
    const message = { tokenId, version: 1n, sharesRoot, newSharesRoot, cluster: a.cluster, epoch };
    const sign = async (slots: number[], signers = slots.map((s) => a.enclaves[s]!)) =>
      Promise.all(slots.map(async (slot, i) => ({ slot, signature: await signReshare(v, signers[i]!.account, message) })));
    const params = { tokenId, version: 1n, newSharesRoot, cluster: a.cluster };

    const few = await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([0, 1]) }), "NotEnoughSignatures");
    assert.deepEqual(few.args, { given: 2n, threshold: 3 });
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([0, 2, 2]) }), "SlotsNotAscending");
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([2, 1, 0]) }), "SlotsNotAscending");
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([0, 1, 2], [a.enclaves[0]!, a.enclaves[1]!, b.enclaves[2]!]) }), "NotSlotEnclave");
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, version: 2n, signatures: await sign([0, 1, 2]) }), "WrongVersion");
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, newSharesRoot: zeroHash, signatures: await sign([0, 1, 2]) }), "ZeroSharesRoot");
    // Signatures over another new root do not carry over.
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, newSharesRoot: randomDigest(), signatures: await sign([0, 1, 2]) }), "NotSlotEnclave");
    const { tokenId: small } = await storeToken(v, 2, 3);
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, tokenId: small, signatures: await sign([0, 1, 2]) }), "ClusterSizeMismatch");

    const tx = await reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([0, 2, 4]) });
    assert.deepEqual(events(tx.receipt).map((e) => e.args), [{ tokenId, cluster: a.cluster, version: 2n, sharesRoot: newSharesRoot }]);
    assert.deepEqual(await readSecret(v.reader, v.vault, tokenId), { tokenId, threshold: 3, shares: 5, version: 2n, burned: false, sharesRoot: newSharesRoot });
    assert.deepEqual(await readSync(v.reader, v.vault, tokenId, a.cluster), { confirmedSlots: [], synced: false });
    // Replaying the same re-share: its version is gone.
    await rejectsWith(reshareSecret(v.relayer, v.vault, { ...params, signatures: await sign([0, 2, 4]) }), "WrongVersion");
    const again = await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, a.cluster, a.enclaves, [tokenId]));
    assert.deepEqual(events(again.receipt).filter((e) => e.eventName === "SecretSynced").map((e) => e.args), [{ tokenId, cluster: a.cluster, version: 2n }]);
  });

  test("a transfer keeps the record and the sync state; only the current owner burns", async () => {
    const { tokenId, sharesRoot } = await storeToken(v);
    await confirmShares(v.relayer, v.vault, await clusterConfirmations(v, a.cluster, a.enclaves, [tokenId]));
    const buyer = v.operators[2]!;
    await writeContractTransaction(v.owner, "transferFrom", { address: v.vault, abi: secretVaultAbi, functionName: "transferFrom", args: [v.owner.account.address, buyer.account.address, tokenId] });
    assert.equal(await readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "ownerOf", args: [tokenId] }), buyer.account.address);
    assert.deepEqual(await readSecret(v.reader, v.vault, tokenId), { tokenId, threshold: 3, shares: 5, version: 1n, burned: false, sharesRoot });
    assert.equal((await readSync(v.reader, v.vault, tokenId, a.cluster)).synced, true);

    const err = await rejectsWith(burnSecret(v.owner, v.vault, tokenId), "NotTokenOwner");
    assert.deepEqual(err.args, { tokenId, caller: v.owner.account.address });
    // An approved operator may transfer the token but not destroy the secret.
    await writeContractTransaction(buyer, "approve", { address: v.vault, abi: secretVaultAbi, functionName: "approve", args: [v.relayer.account.address, tokenId] });
    await rejectsWith(burnSecret(v.relayer, v.vault, tokenId), "NotTokenOwner");
    const tx = await burnSecret(buyer, v.vault, tokenId);
    const burned = events(tx.receipt).find((e) => e.eventName === "SecretBurned");
    assert.deepEqual(burned?.args, { tokenId, owner: buyer.account.address });
    assert.equal((await readSecret(v.reader, v.vault, tokenId)).burned, true);
    await rejectsWith(burnSecret(buyer, v.vault, tokenId), "UnknownToken");
    await assert.rejects(readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "ownerOf", args: [tokenId] }), /ERC721NonexistentToken/);
  });

  test("the documented storage slots hold the owner and the record (what an enclave proves with eth_getProof)", async () => {
    const { tokenId, sharesRoot } = await storeToken(v, 3, 5);
    const slotOf = (slot: bigint, offset = 0n) => {
      const base = hexToBigInt(keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }], [tokenId, slot])));
      return `0x${(base + offset).toString(16).padStart(64, "0")}` as Hex;
    };
    const word = async (slot: Hex) => hexToBigInt((await getStorageAt(v.reader, { address: v.vault, slot })) ?? "0x0");
    assert.equal(await word(slotOf(vaultStorageSlots.owners)), hexToBigInt(v.owner.account.address));
    const packed = await word(slotOf(vaultStorageSlots.secrets));
    assert.deepEqual([packed & 0xffn, (packed >> 8n) & 0xffn, (packed >> 16n) & ((1n << 64n) - 1n), (packed >> 80n) & 0xffn], [3n, 5n, 1n, 0n]);
    assert.equal(await word(slotOf(vaultStorageSlots.secrets, 1n)), hexToBigInt(sharesRoot));
    await burnSecret(v.owner, v.vault, tokenId);
    assert.equal(await word(slotOf(vaultStorageSlots.owners)), 0n);
    assert.equal((await word(slotOf(vaultStorageSlots.secrets)) >> 80n) & 0xffn, 1n);
  });

  test("the cluster, membership, sync and slotSince words sit where the enclave and the docs say, after a replacement", async () => {
    const c = await makeCluster(v, 2);
    const { tokenId } = await storeToken(v, 2, 2);
    await confirmShares(v.relayer, v.vault, [await confirmationBy(v, c.enclaves[0]!, c.cluster, 0, [tokenId])]);
    const replacement = newEnclave();
    await register(v, replacement, v.chain.accounts.operators[0]!.address);
    await replaceClusterMember(v.admin, v.vault, c.cluster, 1, replacement.address);
    const word = async (slot: Hex) => hexToBigInt((await getStorageAt(v.reader, { address: v.vault, slot })) ?? "0x0");
    const cluster = { type: "uint256", value: c.cluster } as const;
    const clusterWord = await word(mappingSlot(cluster, VAULT_CLUSTERS_SLOT));
    assert.deepEqual([clusterWord & 0xffn, (clusterWord >> 8n) & 0xffffffffn], [2n, 1n]);
    assert.equal(await word(nestedMappingSlot([cluster, { type: "uint256", value: 1n }], vaultStorageSlots.memberAt)), hexToBigInt(replacement.address));
    const membership = await word(mappingSlot({ type: "address", value: replacement.address }, VAULT_MEMBERSHIP_SLOT));
    assert.deepEqual([membership & ((1n << 64n) - 1n), (membership >> 64n) & 0xffn, (membership >> 72n) & 0xffn], [c.cluster, 1n, 1n]);
    const sync = await word(nestedMappingSlot([{ type: "uint256", value: tokenId }, cluster], vaultStorageSlots.syncs));
    assert.deepEqual([sync & ((1n << 64n) - 1n), (sync >> 64n) & 0xffffffffn, (sync >> 96n) & 0xffffffffn, (sync >> 128n) & 0xffn], [1n, 0n, 1n, 0n]);
    assert.equal(await word(nestedMappingSlot([cluster, { type: "uint256", value: 1n }], vaultStorageSlots.slotSince)), 1n);
    assert.equal(await word(nestedMappingSlot([cluster, { type: "uint256", value: 0n }], vaultStorageSlots.slotSince)), 0n);
  });

  test("supports the ERC-721 and AccessControl interfaces", async () => {
    for (const id of ["0x80ac58cd", "0x5b5e139f", "0x7965db0b"] as Hex[]) {
      assert.equal(await readContract(v.reader, { address: v.vault, abi: secretVaultAbi, functionName: "supportsInterface", args: [id] }), true, id);
    }
  });
});
