/**
 * The batched paths (issue 15's throughput): many secrets per SDK call (storeBatch on chain, one storeMany
 * per slot per batch), a tampered item refused alone by the enclave, replication over kept peer sessions
 * (also after the source restarts), and a bootstrap paged over mutual-aTLS sessions (two pages a call, each
 * call resuming from the sealed cursor). Two clusters of 3.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { getContractEvents } from "viem/actions";
import { secretVaultAbi } from "../../src/chain/abi/SecretVault.ts";
import type { VaultDirectory } from "../../src/host/vault-host.ts";
import { awaitSyncedMany, retrieveVaultSecret, storeVaultSecrets } from "../../src/sdk/vault.ts";
import { startVaultTestNet, type VaultTestNet } from "./fixture.ts";

let t: VaultTestNet;
const stored: bigint[] = [];
const opts = { threshold: 2, shares: 3 };
const secretOf = (i: number) => new TextEncoder().encode(`batched secret ${i}`);

before(async () => {
  // Two pages per bootstrapFrom call: the bootstrap below takes several calls, each resuming from the sealed cursor.
  t = await startVaultTestNet({ clusters: 2, size: 3, pageSize: 4, pagesPerCall: 2 });
});
after(() => t.close());

test("twelve secrets stored in three storeBatch transactions are synced in both clusters; each comes back whole", async () => {
  const from = await t.reader.getBlockNumber();
  const r = await storeVaultSecrets(t.ctx, t.owner, Array.from({ length: 12 }, (_, i) => secretOf(i)), { ...opts, batchSize: 5 });
  assert.equal(r.tokenIds.length, 12);
  assert.equal(new Set(r.tokenIds).size, 12);
  assert.equal(r.transactionHashes.length, 3);
  assert.equal(r.cluster, t.net.clusters[0]!.id);
  stored.push(...r.tokenIds);
  // Replicated to the second cluster through the crawl (fetches over kept mutual-aTLS sessions).
  await awaitSyncedMany(t.ctx, r.tokenIds, t.net.clusters[1]!.id, from, 120_000);
  for (const i of [0, 7, 11]) {
    const got = await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, r.tokenIds[i]!, { clusters: [t.net.clusters[1]!.id] });
    assert.equal(new TextDecoder().decode(got), `batched secret ${i}`);
  }
  assert.ok(t.events.some((e) => e.event.type === "fetched" && e.event.transport === "atls"));
});

test("one tampered item of a batch is refused by its slot alone: the others are stored and synced", async () => {
  const flip = (b: Uint8Array) => {
    const c = Uint8Array.from(b);
    c[c.length - 1]! ^= 1;
    return c;
  };
  // A lying host in front of slot 1 of the first cluster corrupts the second envelope of every batch it relays.
  const victim = t.net.clusters[0]!.members[1]!;
  const lying: VaultDirectory = {
    node(enclave) {
      const n = t.ctx.directory.node(enclave);
      if (!n || enclave !== victim) return n;
      return { ...n, storeMany: (p) => n.storeMany({ items: p.items.map((item, i) => (i === 1 ? { ...item, envelope: { ...item.envelope, ciphertext: flip(item.envelope.ciphertext) } } : item)) }) };
    },
  };
  const from = await t.reader.getBlockNumber();
  await assert.rejects(storeVaultSecrets({ ...t.ctx, directory: lying }, t.owner, [secretOf(20), secretOf(21), secretOf(22)], { ...opts, awaitSync: false }), (e: { code: string; details: { tokens: string[]; failed: { tokenId: string; slot: number; code: string }[] } }) => {
    assert.equal(e.code, "STORE_INCOMPLETE");
    assert.equal(e.details.failed.length, 1);
    assert.equal(e.details.failed[0]!.slot, 1);
    assert.match(e.details.failed[0]!.code, /WRONG_BINDING|TAMPERED_SHARE/);
    assert.deepEqual(e.details.tokens, [e.details.failed[0]!.tokenId]);
    return true;
  });
  const logs = await getContractEvents(t.reader, { address: t.deployment.vault, abi: secretVaultAbi, eventName: "SecretStored", fromBlock: from });
  const minted = logs.map((l) => l.args.tokenId!);
  assert.equal(minted.length, 3);
  // The two untouched tokens sync in the first cluster (every slot took them); the tampered one never does.
  await awaitSyncedMany(t.ctx, [minted[0]!, minted[2]!], t.net.clusters[0]!.id, from, 60_000);
  await assert.rejects(awaitSyncedMany(t.ctx, [minted[1]!], t.net.clusters[0]!.id, from, 1_500), { code: "NOT_SYNCED" });
  assert.equal((await t.net.enclave(0, 1)!.missing({ tokens: minted.map((tokenId) => ({ tokenId, version: 1n })) })).tokenIds.length, 1);
  stored.push(minted[0]!, minted[2]!);
});

test("replication goes on after the source enclave restarts (its kept session is gone)", async () => {
  await t.net.stop(0, 0);
  await t.net.restart(0, 0);
  const from = await t.reader.getBlockNumber();
  const r = await storeVaultSecrets(t.ctx, t.owner, [secretOf(30), secretOf(31)], opts);
  await awaitSyncedMany(t.ctx, r.tokenIds, t.net.clusters[1]!.id, from, 120_000);
  stored.push(...r.tokenIds);
});

test("a replacement bootstraps every share of its slot in pages of 4, two per session, then its cluster syncs again", async () => {
  // The source (slot 2 of the first cluster) also holds the tampered token's share: its slot took it.
  const held = (await t.net.enclave(0, 2)!.status()).shares;
  assert.equal(held, stored.length + 1);
  // Every stored token synced in the second cluster first (the tampered batch's were awaited in the first only).
  await awaitSyncedMany(t.ctx, stored, t.net.clusters[1]!.id, 0n, 120_000);
  const from = await t.reader.getBlockNumber();
  const framesFrom = t.frames.length;
  const fresh = await t.net.replace(1, 2);
  const pages = t.events.filter((e) => e.event.type === "bootstrap-page" && e.event.enclave === fresh.identity.signer);
  assert.equal(pages.length, Math.ceil(held / 4));
  assert.equal((await fresh.missing({ tokens: stored.map((tokenId) => ({ tokenId, version: 1n })) })).tokenIds.length, 0);
  const status = await fresh.status();
  assert.equal(status.bootstrapCursor, null);
  assert.equal(status.shares, held);
  // The replacement invalidated slot 2's confirmations only: the new member's alone re-sync the cluster.
  await awaitSyncedMany(t.ctx, stored, t.net.clusters[1]!.id, from, 120_000);
  const confirmed = await getContractEvents(t.reader, { address: t.deployment.vault, abi: secretVaultAbi, eventName: "ShareConfirmed", args: { cluster: t.net.clusters[1]!.id }, fromBlock: from + 1n, strict: true });
  const atVersion1 = confirmed.filter((l) => l.args.version === 1n);
  assert.deepEqual(new Set(atVersion1.map((l) => l.args.enclave)), new Set([fresh.identity.signer]));
  assert.ok(stored.every((id) => atVersion1.some((l) => l.args.tokenId === id)));
  // Nor did the unchanged members sign version 1 again (their confirmations still count on chain).
  const asked = new Set<string>();
  for (const f of t.frames.slice(framesFrom)) {
    const frame = f.frame as { id?: number; method?: string; result?: unknown };
    if (!["1:0", "1:1"].includes(f.enclave) || frame.id === undefined) continue;
    if (f.direction === "to-enclave" && frame.method === "confirmations") asked.add(`${f.enclave}/${frame.id}`);
    if (f.direction === "from-enclave" && asked.has(`${f.enclave}/${frame.id}`)) {
      const signed = frame.result as { shares: { version: bigint }[] }[];
      assert.equal(signed.flatMap((c) => c.shares).filter((x) => x.version === 1n).length, 0, `${f.enclave} signed version 1 again`);
    }
  }
  const got = await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[3]!, { clusters: [t.net.clusters[1]!.id] });
  assert.equal(new TextDecoder().decode(got), "batched secret 3");
});
