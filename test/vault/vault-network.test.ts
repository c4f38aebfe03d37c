/**
 * The vault end to end on real processes: an in-process EDR chain served over HTTP, SecretVault and the
 * registry deployed by deployCloister, two clusters of five vault enclave processes (one host per cluster),
 * and the SDK as the owner. Each step builds on the previous one's state.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { serialize } from "node:v8";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { readSecret } from "../../src/chain/actions/read-secret.ts";
import { readSync } from "../../src/chain/actions/read-sync.ts";
import { readVaultEvents } from "../../src/chain/actions/read-vault-events.ts";
import { fromHex } from "../../src/crypto/bytes.ts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { combine as shamirCombine } from "shamir-secret-sharing";
import { parseShareSetDescriptor, shareSetDescriptorJson } from "../../src/protocol/vault-descriptor.ts";
import { openRetrievalResponse, ShareSealer } from "../../src/protocol/vault-envelopes.ts";
import { retrievalRequestDigest, signRetrievalRequest, vaultDomain } from "../../src/protocol/vault-retrieval.ts";
import { combineShares, type ShareSetDescriptor, type VaultShare } from "../../src/protocol/vault-shares.ts";
import { VaultReshareKeeper } from "../../src/host/vault-reshare-keeper.ts";
import type { VaultDirectory } from "../../src/host/vault-host.ts";
import { awaitSynced, burnVaultSecret, retrieveVaultSecret, storeVaultSecret, transferVaultSecret, vaultStatus } from "../../src/sdk/vault.ts";
import { startVaultTestNet, type VaultTestNet } from "./fixture.ts";

const CANARY = "CANARY-vault-7f3a9c1e-never-outside-an-enclave";
let t: VaultTestNet;
const stored: bigint[] = [];

before(async () => {
  t = await startVaultTestNet({ clusters: 2, size: 5 });
});
after(async () => {
  await t?.close();
});

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("a 3-of-5 secret is stored, synced in the first cluster and replicated to the second; the owner gets it back", async () => {
  const [c1, c2] = t.net.clusters;
  const secret = new TextEncoder().encode(CANARY);
  const s = await storeVaultSecret(t.ctx, t.owner, secret);
  stored.push(s.tokenId);
  assert.equal(s.cluster, c1!.id);
  assert.equal((await readSync(t.reader, t.deployment.vault, s.tokenId, c1!.id)).synced, true);
  await awaitSynced(t.ctx, s.tokenId, c2!.id);
  const status = await vaultStatus(t.ctx, s.tokenId);
  assert.deepEqual(status.clusters.map((c) => c.synced), [true, true]);
  assert.equal(status.clusters[1]!.slots.every((x) => x.confirmed), true);
  assert.deepEqual(await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, s.tokenId, { clusters: [c2!.id] }), secret);
  // Every enclave of the second cluster fetched its share from the same slot of the first.
  const fetched = t.events.filter((e) => e.event.type === "fetched" && e.host === 1);
  assert.ok(fetched.length >= 5, `expected 5 fetches by cluster 2's host, saw ${fetched.length}`);
  // Enclave to enclave over mutual attested TLS: the hosts' relays carried TLS records only.
  assert.ok(fetched.every((e) => e.event.type === "fetched" && e.event.transport === "atls"));
  assert.ok(t.carried.length > 0);
});

test("with 2 of the 5 enclaves of a cluster stopped, the owner still retrieves from that cluster", async () => {
  const c1 = t.net.clusters[0]!;
  await t.net.stop(0, 1);
  await t.net.stop(0, 4);
  const got = await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[0]!, { clusters: [c1.id] });
  assert.equal(new TextDecoder().decode(got), CANARY);
  // Back: they unseal their keys and shares, recover by crawling from their checkpoints, then serve.
  const a = await t.net.restart(0, 1);
  const b = await t.net.restart(0, 4);
  await waitFor("restarted enclaves serving", async () => (await a.status()).state === "serving" && (await b.status()).state === "serving");
  assert.equal((await a.status()).shares, 1);
  assert.equal(a.identity.signer, c1.members[1]);
});

test("a non-owner is refused with WRONG_OWNER by every enclave", async () => {
  await assert.rejects(retrieveVaultSecret(t.ctx, t.chain.accounts.operators[3]!, stored[0]!), (e: { code: string; reason: string }) => e.code === "RETRIEVAL_REFUSED" && e.reason === "WRONG_OWNER");
});

test("a replayed request and an expired one are refused", async () => {
  const node = t.ctx.directory.node(t.net.clusters[0]!.members[0]!)!;
  const key = await generateHpkeKeyPair();
  const domain = vaultDomain(t.chain.chainId, t.deployment.vault);
  const head = await t.reader.getBlockNumber();
  const request = await signRetrievalRequest(t.chain.accounts.requester, domain, { tokenId: stored[0]!, ownerKey: key.publicKey, currentBlock: head, validityBlocks: 16n });
  await node.retrieve({ request });
  await assert.rejects(node.retrieve({ request }), { code: "REQUEST_REPLAYED" });
  const old = await signRetrievalRequest(t.chain.accounts.requester, domain, { tokenId: stored[0]!, ownerKey: key.publicKey, currentBlock: head > 40n ? head - 40n : 0n, validityBlocks: 4n });
  // Mine past the window if the chain is young.
  while ((await t.reader.getBlockNumber()) <= old.message.notAfterBlock) await t.chain.provider.request({ method: "evm_mine", params: [] });
  await assert.rejects(node.retrieve({ request: old }), { code: "REQUEST_EXPIRED" });
  const tooLong = await signRetrievalRequest(t.chain.accounts.requester, domain, { tokenId: stored[0]!, ownerKey: key.publicKey, currentBlock: await t.reader.getBlockNumber(), validityBlocks: 1000n });
  await assert.rejects(node.retrieve({ request: tooLong }), { code: "REQUEST_EXPIRED" });
});

test("a peer that is not the same slot of another cluster is refused its share", async () => {
  const node = t.ctx.directory.node(t.net.clusters[0]!.members[2]!)!;
  await assert.rejects(node.exportShares({ requester: privateKeyToAccount(generatePrivateKey()).address, tokenIds: [stored[0]!] }), { code: "PEER_REFUSED" });
  await assert.rejects(node.exportShares({ requester: t.net.clusters[0]!.members[3]!, tokenIds: [stored[0]!] }), { code: "PEER_REFUSED" });
  await assert.rejects(node.exportShares({ requester: t.net.clusters[1]!.members[3]!, tokenIds: [stored[0]!] }), { code: "PEER_REFUSED" });
  const ok = await node.exportShares({ requester: t.net.clusters[1]!.members[2]!, tokenIds: [stored[0]!] });
  assert.equal(ok.items.length, 1);
  // Over mutual attested TLS the requester is the certificate's signer: a same-cluster enclave is refused,
  // and a listener that is not the enclave the host named is refused by the fetching enclave.
  const sameCluster = t.net.enclave(0, 3)!;
  const target = t.net.clusters[0]!.members[2]!;
  await assert.rejects(sameCluster.fetchFrom({ ...t.ctx.directory.listenerOf!(target)!, peer: target, tokenIds: [stored[0]!] }), { code: "PEER_REFUSED" });
  const other = t.net.enclave(1, 2)!;
  await assert.rejects(other.fetchFrom({ ...t.ctx.directory.listenerOf!(t.net.clusters[0]!.members[1]!)!, peer: target, tokenIds: [stored[0]!] }), { code: "PEER_REFUSED" });
  const fetched = await other.fetchFrom({ ...t.ctx.directory.listenerOf!(target)!, peer: target, tokenIds: [stored[0]!] });
  assert.deepEqual(fetched.refused, []);
});

test("a tampered share is detected: by the enclave that stores it, and by the owner who combines (who still succeeds with k good ones)", async () => {
  const flip = (b: Uint8Array) => {
    const c = Uint8Array.from(b);
    c[c.length - 1]! ^= 1;
    return c;
  };
  // A lying host in front of slot 0 of cluster 1 corrupts the store envelope it relays.
  const lying: VaultDirectory = {
    node(enclave) {
      const n = t.ctx.directory.node(enclave);
      if (!n || enclave !== t.net.clusters[0]!.members[0]) return n;
      return { ...n, store: (p) => n.store({ ...p, envelope: { ...p.envelope, ciphertext: flip(p.envelope.ciphertext) } }), retrieve: async (p) => {
        const r = await n.retrieve(p);
        return { ...r, envelope: { ...r.envelope, ciphertext: flip(r.envelope.ciphertext) } };
      } };
    },
  };
  await assert.rejects(storeVaultSecret({ ...t.ctx, directory: lying }, t.owner, new TextEncoder().encode("tampered"), { awaitSync: false }), (e: { code: string; details: { failed: { slot: number; code: string }[] } }) => {
    assert.equal(e.code, "STORE_INCOMPLETE");
    assert.deepEqual(e.details.failed.map((f) => f.slot), [0]);
    assert.match(e.details.failed[0]!.code, /WRONG_BINDING|TAMPERED_SHARE/);
    return true;
  });
  // Retrieval through the lying host: one bad answer is set aside, the other four give k good shares.
  const got = await retrieveVaultSecret({ ...t.ctx, directory: lying }, t.chain.accounts.requester, stored[0]!, { clusters: [t.net.clusters[0]!.id] });
  assert.equal(new TextDecoder().decode(got), CANARY);
});

test("an enclave killed while its cluster replicates recovers by crawling from its sealed checkpoint", async () => {
  const [c1, c2] = t.net.clusters;
  await t.net.stop(1, 2);
  const s = await storeVaultSecret(t.ctx, t.owner, new TextEncoder().encode(`${CANARY}-2`));
  stored.push(s.tokenId);
  await waitFor("4 of 5 slots of cluster 2", async () => (await readSync(t.reader, t.deployment.vault, s.tokenId, c2!.id)).confirmedSlots.length === 4);
  assert.equal((await readSync(t.reader, t.deployment.vault, s.tokenId, c2!.id)).synced, false);
  const back = await t.net.restart(1, 2);
  await awaitSynced(t.ctx, s.tokenId, c2!.id);
  assert.equal((await back.status()).state, "serving");
  assert.equal((await back.status()).shares, 2);
  const crawled = t.events.filter((e) => e.event.type === "crawled" && e.event.enclave === back.identity.signer);
  assert.ok(crawled.length >= 1);
  assert.equal(c1!.members.length, 5);
});

/** The owner's view of `tokenId` in cluster `c`: every slot's share opened, the descriptor they came with, and the chain's root. */
async function openedShares(tokenId: bigint, c: number): Promise<{ descriptor: ShareSetDescriptor; root: `0x${string}`; shares: VaultShare[] }> {
  const { sharesRoot } = await readSecret(t.reader, t.deployment.vault, tokenId);
  const key = await generateHpkeKeyPair();
  const domain = vaultDomain(t.chain.chainId, t.deployment.vault);
  const request = await signRetrievalRequest(t.chain.accounts.requester, domain, { tokenId, ownerKey: key.publicKey, currentBlock: await t.reader.getBlockNumber(), validityBlocks: 16n });
  const digest = retrievalRequestDigest(request.domain, request.message);
  const answers = await Promise.all(t.net.clusters[c]!.members.map((m) => t.ctx.directory.node(m)!.retrieve({ request })));
  const descriptor = parseShareSetDescriptor(answers[0]!.descriptor);
  const shares = await Promise.all(answers.map((a) => openRetrievalResponse(key.privateKey, { binding: descriptor.binding, version: a.version, slot: a.slot }, digest, a.envelope)));
  return { descriptor, root: sharesRoot, shares };
}

const beforeReplacement = new Map<bigint, { root: `0x${string}`; version: bigint }>();
let oldShares: Awaited<ReturnType<typeof openedShares>>;

test("a new enclave replacing a member bootstraps every share of its slot from the other cluster; its cluster syncs again", async () => {
  const c2 = t.net.clusters[1]!;
  for (const id of stored) {
    const r = await readSecret(t.reader, t.deployment.vault, id);
    beforeReplacement.set(id, { root: r.sharesRoot, version: r.version });
  }
  oldShares = await openedShares(stored[0]!, 1);
  const fresh = await t.net.replace(1, 3);
  assert.equal(c2.members[3], fresh.identity.signer);
  // Every share its peer holds, at whatever version (the cluster's keeper may already be re-sharing them).
  await waitFor("the new member holds every share", async () => {
    const held = (await fresh.held({ after: null, limit: 100 })).tokens.map((x) => x.tokenId);
    return stored.every((id) => held.includes(id));
  });
  const peer = t.net.enclave(0, 3)!;
  assert.equal((await fresh.status()).shares, (await peer.status()).shares);
  for (const id of stored) await awaitSynced(t.ctx, id, c2.id);
  await waitFor("the new member serving", async () => (await fresh.status()).state === "serving");
  assert.ok(t.events.some((e) => e.event.type === "bootstrap-page" && e.event.enclave === fresh.identity.signer));
  const got = await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[0]!, { clusters: [c2.id] });
  assert.equal(new TextDecoder().decode(got), CANARY);
});

test("after a member is replaced its cluster's keeper re-shares every token the old member held, with no call: version + 1, new root, old and new shares do not combine, both clusters sync it", async () => {
  const [c1, c2] = t.net.clusters;
  // No reshare call: the keeper of cluster 2 saw ClusterMemberReplaced and the old member's ShareConfirmed logs.
  // The chain's version moves when the reshare transaction lands; the keeper reports once its host committed.
  const reshared = () => t.reshares.flatMap((r) => (r.event.type === "reshared" ? [[r.cluster, r.event.tokenId]] : []));
  await waitFor("the keeper re-shared every token of cluster 2", async () => reshared().length >= stored.length, 120_000);
  assert.deepEqual(reshared().sort(), stored.map((id) => [1, String(id)]).sort(), JSON.stringify(t.reshares));
  for (const id of stored) {
    const r = await readSecret(t.reader, t.deployment.vault, id);
    assert.equal(r.version, beforeReplacement.get(id)!.version + 1n);
    assert.notEqual(r.sharesRoot, beforeReplacement.get(id)!.root);
  }
  const needed = t.reshares.filter((r) => r.event.type === "reshare-needed");
  assert.deepEqual(needed.map((r) => [r.cluster, r.event.type === "reshare-needed" && r.event.tokens]), [[1, stored.length]]);
  // Every enclave of both clusters holds the new version (cluster 1 fetched it from cluster 2, its old share overwritten).
  for (const id of stored) {
    const version = beforeReplacement.get(id)!.version + 1n;
    await awaitSynced(t.ctx, id, c2!.id);
    await awaitSynced(t.ctx, id, c1!.id);
    for (let c = 0; c < 2; c++) {
      for (let s = 0; s < 5; s++) {
        const e = t.net.enclave(c, s)!;
        await waitFor(`enclave ${c}:${s} at version ${version} of token ${id}`, async () => (await e.missing({ tokens: [{ tokenId: id, version }] })).tokenIds.length === 0);
      }
    }
  }
  assert.equal(new TextDecoder().decode(await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[0]!, { clusters: [c1!.id] })), CANARY);
  assert.equal(new TextDecoder().decode(await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[0]!, { clusters: [c2!.id] })), CANARY);
  // The old share set is useless with the new one: the owner's check sets an old share aside, and the raw
  // polynomials do not meet (two new shares and an old one interpolate to something else).
  const fresh = await openedShares(stored[0]!, 0);
  assert.equal(new TextDecoder().decode(await combineShares(fresh.descriptor, fresh.root, fresh.shares)), CANARY);
  await assert.rejects(combineShares(fresh.descriptor, fresh.root, [fresh.shares[0]!, fresh.shares[1]!, oldShares.shares[2]!]), { code: "NOT_ENOUGH_SHARES" });
  await assert.rejects(combineShares(oldShares.descriptor, fresh.root, oldShares.shares), { code: "ROOT_MISMATCH" });
  const pure = await shamirCombine(fresh.shares.slice(0, 3).map((x) => x.share));
  const mixed = await shamirCombine([fresh.shares[0]!.share, fresh.shares[1]!.share, oldShares.shares[2]!.share]).catch(() => undefined);
  assert.ok(Buffer.from(pure).includes(Buffer.from(CANARY)), "control: three new shares interpolate to the secret");
  assert.ok(!mixed || !Buffer.from(mixed).includes(Buffer.from(CANARY)));
  // Resumable from the chain alone: a keeper started now finds every owed token re-shared after the replacement.
  const again = new VaultReshareKeeper({ reader: t.reader, vault: t.deployment.vault, cluster: c2!.id, host: t.net.hosts[1]! });
  assert.deepEqual(await again.once(), { reshared: 0, owed: 0 });
  // The other cluster's keeper had nothing to do.
  assert.equal(t.reshares.filter((r) => r.cluster === 0).length, 0);
});

test("a block the host names from before the re-share does not make an enclave take the older share back", async () => {
  const id = stored[0]!;
  const events = await readVaultEvents(t.reader, t.deployment.vault, 0n, await t.reader.getBlockNumber());
  const reshare = events.find((e) => e.kind === "reshared" && e.tokenId === id)!;
  const before = reshare.block - 1n;
  // Within the depth a named block may have (64 below the checkpoint), so the enclave proves the record there.
  assert.ok((await t.reader.getBlockNumber()) - before <= 64n, `block ${before} is too far below the head for this test`);
  const slot = 4;
  const enclave = t.net.enclave(0, slot)!;
  const share = oldShares.shares.find((s) => s.slot === slot)!;
  const { binding, version } = oldShares.descriptor;
  const envelope = new ShareSealer(fromHex(enclave.identity.hpkePublicKey), "store").seal({ binding, version, slot }, share);
  const item = { descriptor: shareSetDescriptorJson(oldShares.descriptor), envelope };
  const node = t.ctx.directory.node(enclave.identity.signer)!;
  // At the named block the old record matches the old share: only the version this enclave holds stops it.
  assert.deepEqual((await node.storeMany({ items: [item], atBlock: before })).refused, [{ index: 0, code: "SUPERSEDED_VERSION" }]);
  // At its own block the chain's record is the new version.
  assert.deepEqual((await node.storeMany({ items: [item] })).refused, [{ index: 0, code: "UNKNOWN_TOKEN" }]);
  assert.deepEqual((await enclave.missing({ tokens: [{ tokenId: id, version: version + 1n }] })).tokenIds, []);
  assert.equal(new TextDecoder().decode(await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, id, { clusters: [t.net.clusters[0]!.id] })), CANARY);
});

test("after a transfer the old owner is refused and the new owner retrieves", async () => {
  const to = t.chain.accounts.operators[3]!;
  await transferVaultSecret(t.ctx, t.owner, stored[1]!, to.address);
  await assert.rejects(retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored[1]!), (e: { reason: string }) => e.reason === "WRONG_OWNER");
  assert.equal(new TextDecoder().decode(await retrieveVaultSecret(t.ctx, to, stored[1]!)), `${CANARY}-2`);
});

test("a burned token's shares are dropped and retrieval is refused", async () => {
  const s = await storeVaultSecret(t.ctx, t.owner, new TextEncoder().encode("to burn"));
  await burnVaultSecret(t.ctx, t.owner, s.tokenId);
  await assert.rejects(retrieveVaultSecret(t.ctx, t.chain.accounts.requester, s.tokenId), { code: "UNKNOWN_TOKEN" });
  const e = t.net.enclave(0, 0)!;
  await waitFor("the share dropped", async () => (await e.held({ after: null, limit: 100 })).tokens.every((x) => x.tokenId !== s.tokenId));
});

test("the canary secret is in no host-visible place: data dirs, gate frames, host events, chain", async () => {
  const needles = [Buffer.from(CANARY), Buffer.from(Buffer.from(CANARY).toString("hex")), Buffer.from(Buffer.from(CANARY).toString("base64"))];
  const has = (b: Buffer) => needles.some((n) => b.includes(n));
  async function files(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await files(p)));
      else out.push(p);
    }
    return out;
  }
  const all = await files(t.root);
  assert.ok(all.length > 20);
  for (const f of all) {
    const bytes = await readFile(f).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? Buffer.alloc(0) : Promise.reject(e)));
    assert.equal(has(bytes), false, `canary in ${f}`);
  }
  assert.ok(t.frames.length > 100);
  for (const f of t.frames) assert.equal(has(serialize(f.frame)), false, `canary in a gate frame of ${f.enclave}`);
  assert.equal(has(Buffer.from(JSON.stringify(t.events))), false);
  assert.ok(t.carried.length > 10);
  assert.equal(has(Buffer.concat(t.carried)), false, "canary in bytes the relays carried");
  const head = await t.reader.getBlockNumber();
  for (let n = 0n; n <= head; n++) {
    const block = await t.chain.provider.request({ method: "eth_getBlockByNumber", params: [`0x${n.toString(16)}`, true] });
    assert.equal(has(Buffer.from(JSON.stringify(block))), false, `canary in block ${n}`);
  }
  const logs = await t.chain.provider.request({ method: "eth_getLogs", params: [{ fromBlock: "0x0", toBlock: "latest" }] });
  assert.equal(has(Buffer.from(JSON.stringify(logs))), false);
  // A control: the check does see the canary where it is.
  assert.equal(has(Buffer.from(`x${CANARY}x`)), true);
});
