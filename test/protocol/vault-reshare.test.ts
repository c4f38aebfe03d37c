/** Proactive refresh: same secret, new shares at version + 1; old shares no longer pass and do not mix with new ones. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { combine } from "shamir-secret-sharing";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { openVerifiedShare, sealShare, sealShareSet } from "../../src/protocol/vault-envelopes.ts";
import { refreshShares } from "../../src/protocol/vault-reshare.ts";
import { combineShares, splitSecret, verifyShare, type VaultShare } from "../../src/protocol/vault-shares.ts";
import { binding, canary, contains, rejectsWith } from "./vault-fixtures.ts";

test("refreshed shares combine to the same secret under a new root; the secret commitment is unchanged", async () => {
  const old = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const fresh = await refreshShares(old.descriptor, old.root, old.shares.slice(1, 4));
  assert.equal(fresh.descriptor.version, 2n);
  assert.notEqual(fresh.root, old.root);
  assert.equal(fresh.descriptor.secretCommitment, old.descriptor.secretCommitment, "the same secret (and salt)");
  for (let slot = 0; slot < 5; slot++) assert.notDeepEqual(fresh.shares[slot]!.share, old.shares[slot]!.share);
  assert.deepEqual(await combineShares(fresh.descriptor, fresh.root, fresh.shares.slice(2)), canary);
  const again = await refreshShares(fresh.descriptor, fresh.root, [fresh.shares[4]!, fresh.shares[0]!, fresh.shares[2]!]);
  assert.equal(again.descriptor.version, 3n);
  assert.deepEqual(await combineShares(again.descriptor, again.root, again.shares.slice(0, 3)), canary);
});

test("old shares fail the new commitments, and old and new shares mixed do not recombine the secret", async () => {
  const old = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const fresh = await refreshShares(old.descriptor, old.root, old.shares.slice(0, 3));
  for (const s of old.shares) await rejectsWith(() => verifyShare(fresh.descriptor, fresh.root, s), "TAMPERED_SHARE");
  for (const s of fresh.shares) await rejectsWith(() => verifyShare(old.descriptor, old.root, s), "TAMPERED_SHARE");
  const mixed: VaultShare[] = [fresh.shares[0]!, fresh.shares[1]!, old.shares[2]!, old.shares[3]!];
  await rejectsWith(combineShares(fresh.descriptor, fresh.root, mixed), "NOT_ENOUGH_SHARES");
  await rejectsWith(combineShares(old.descriptor, old.root, mixed), "NOT_ENOUGH_SHARES");
  // Below the commitments too: the polynomials differ, so the raw shares mixed give another value.
  const salted = await combine([fresh.shares[0]!.share, fresh.shares[1]!.share, fresh.shares[2]!.share]);
  assert.ok(contains(salted, canary));
  const raw = await combine([fresh.shares[0]!.share, fresh.shares[1]!.share, old.shares[2]!.share]).catch(() => undefined);
  assert.notDeepEqual(raw, salted);
});

test("the dealer refuses tampered inputs and can change the share count for a new membership", async () => {
  const old = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const flipped = old.shares[0]!.share.slice();
  flipped[1] = flipped[1]! ^ 1;
  await rejectsWith(refreshShares(old.descriptor, old.root, [{ ...old.shares[0]!, share: flipped }, old.shares[1]!, old.shares[2]!]), "NOT_ENOUGH_SHARES");
  await rejectsWith(refreshShares(old.descriptor, old.root, old.shares.slice(0, 2)), "NOT_ENOUGH_SHARES");
  const wider = await refreshShares(old.descriptor, old.root, old.shares.slice(0, 3), { threshold: 4, shareCount: 7 });
  assert.equal(wider.shares.length, 7);
  await rejectsWith(combineShares(wider.descriptor, wider.root, wider.shares.slice(0, 3)), "NOT_ENOUGH_SHARES");
  assert.deepEqual(await combineShares(wider.descriptor, wider.root, wider.shares.slice(3)), canary);
  await rejectsWith(refreshShares(old.descriptor, old.root, old.shares.slice(0, 3), { threshold: 6 }), "INVALID_ARGUMENT");
});

test("the whole refresh over envelopes: holders transfer to the dealer, the dealer stores to the new slot enclaves", async () => {
  const old = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const dealer = await generateHpkeKeyPair();
  const transfers = await Promise.all([0, 1, 3].map(async (slot) => ({ slot, sealed: await sealShare(dealer.publicKey, "transfer", { binding, version: 1n, slot }, old.shares[slot]!) })));
  const received = await Promise.all(transfers.map((t) => openVerifiedShare(dealer.privateKey, "transfer", old.descriptor, old.root, t.slot, t.sealed)));
  const fresh = await refreshShares(old.descriptor, old.root, received);
  const members = await Promise.all(fresh.shares.map(() => generateHpkeKeyPair()));
  const sealed = await sealShareSet(fresh, members.map((m) => m.publicKey), "transfer");
  const stored = await Promise.all(sealed.map(async (e) => {
    assert.ok(!contains(e.ciphertext, canary));
    return openVerifiedShare(members[e.slot]!.privateKey, "transfer", fresh.descriptor, fresh.root, e.slot, e);
  }));
  assert.deepEqual(await combineShares(fresh.descriptor, fresh.root, stored.slice(1, 4)), canary);
  await rejectsWith(openVerifiedShare(dealer.privateKey, "transfer", fresh.descriptor, fresh.root, 0, transfers[0]!.sealed), "WRONG_BINDING");
});
