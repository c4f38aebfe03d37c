/** Share envelopes: HPKE to the slot enclave, bound to token, version, slot, purpose and sequence number; hosts relay only ciphertext. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import {
  openRetrievalResponse,
  openShare,
  openVerifiedShare,
  sealRetrievalResponse,
  sealShare,
  sealShareSet,
  ShareOpener,
  ShareSealer,
  type ShareAddress,
} from "../../src/protocol/vault-envelopes.ts";
import { splitSecret } from "../../src/protocol/vault-shares.ts";
import { binding, canary, contains, otherToken, rejectsWith } from "./vault-fixtures.ts";

const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
const at = (slot: number, over: Partial<ShareAddress> = {}): ShareAddress => ({ binding, version: 1n, slot, ...over });

test("the owner seals each share to its slot enclave; the enclave opens and checks it against the root", async () => {
  const enclaves = await Promise.all(set.shares.map(() => generateHpkeKeyPair()));
  const sealed = await sealShareSet(set, enclaves.map((e) => e.publicKey), "store");
  assert.deepEqual(sealed.map((e) => e.slot), [0, 1, 2, 3, 4]);
  for (const [slot, envelope] of sealed.entries()) {
    const share = await openVerifiedShare(enclaves[slot]!.privateKey, "store", set.descriptor, set.root, slot, envelope);
    assert.deepEqual(share, set.shares[slot]);
    assert.ok(!contains(envelope.ciphertext, canary) && !contains(envelope.enc, canary), "the host relays no plaintext");
    assert.ok(!contains(envelope.ciphertext, set.shares[slot]!.share), "nor the share itself");
  }
  await rejectsWith(openShare(enclaves[0]!.privateKey, "store", at(0), sealed[1]!), "WRONG_BINDING");
  await rejectsWith(sealShareSet(set, enclaves.slice(1).map((e) => e.publicKey), "store"), "INVALID_ARGUMENT");
});

test("an envelope replayed into another token, version, slot, purpose or key does not open: WRONG_BINDING", async () => {
  const enclave = await generateHpkeKeyPair();
  const other = await generateHpkeKeyPair();
  const envelope = await sealShare(enclave.publicKey, "store", at(1), set.shares[1]!);
  assert.ok((await openShare(enclave.privateKey, "store", at(1), envelope)).share.length > 0);
  await rejectsWith(openShare(enclave.privateKey, "store", at(2), envelope), "WRONG_BINDING");
  await rejectsWith(openShare(enclave.privateKey, "store", at(1, { version: 2n }), envelope), "WRONG_BINDING");
  await rejectsWith(openShare(enclave.privateKey, "store", at(1, { binding: otherToken }), envelope), "WRONG_BINDING");
  await rejectsWith(openShare(enclave.privateKey, "store", at(1, { binding: { ...binding, chainId: 1n } }), envelope), "WRONG_BINDING");
  await rejectsWith(openShare(enclave.privateKey, "transfer", at(1), envelope), "WRONG_BINDING");
  await rejectsWith(openShare(other.privateKey, "store", at(1), envelope), "WRONG_BINDING");
  const altered = { ...envelope, ciphertext: envelope.ciphertext.slice() };
  altered.ciphertext[3] = altered.ciphertext[3]! ^ 0x80;
  await rejectsWith(openShare(enclave.privateKey, "store", at(1), altered), "WRONG_BINDING");
  await rejectsWith(sealShare(enclave.publicKey, "store", at(2), set.shares[1]!), "INVALID_ARGUMENT");
});

test("anyone can seal to an enclave's public key, so a substituted share that opens is caught by its commitment", async () => {
  const enclave = await generateHpkeKeyPair();
  const forged = await splitSecret(binding, new TextEncoder().encode("the host's own secret"), { threshold: 3, shareCount: 5 });
  const substituted = await sealShare(enclave.publicKey, "store", at(0), forged.shares[0]!);
  await rejectsWith(openVerifiedShare(enclave.privateKey, "store", set.descriptor, set.root, 0, substituted), "TAMPERED_SHARE");
  const flipped = set.shares[0]!.share.slice();
  flipped[0] = flipped[0]! ^ 1;
  const corrupted = await sealShare(enclave.publicKey, "store", at(0), { ...set.shares[0]!, share: flipped });
  await rejectsWith(openVerifiedShare(enclave.privateKey, "store", set.descriptor, set.root, 0, corrupted), "TAMPERED_SHARE");
  const empty = await sealShare(enclave.publicKey, "store", at(0), { ...set.shares[0]!, share: new Uint8Array(1) });
  await rejectsWith(openVerifiedShare(enclave.privateKey, "store", set.descriptor, set.root, 0, empty), "TAMPERED_SHARE");
  await rejectsWith(openVerifiedShare(enclave.privateKey, "store", forged.descriptor, set.root, 0, substituted), "ROOT_MISMATCH");
});

test("a peer at the same slot fetches a share over a transfer envelope and checks it; a corrupted one is refused", async () => {
  const peer = await generateHpkeKeyPair();
  const good = await sealShare(peer.publicKey, "transfer", at(4), set.shares[4]!);
  assert.deepEqual(await openVerifiedShare(peer.privateKey, "transfer", set.descriptor, set.root, 4, good), set.shares[4]);
  const salt = set.shares[4]!.salt.slice();
  salt[0] = salt[0]! ^ 1;
  const bad = await sealShare(peer.publicKey, "transfer", at(4), { ...set.shares[4]!, salt });
  await rejectsWith(openVerifiedShare(peer.privateKey, "transfer", set.descriptor, set.root, 4, bad), "TAMPERED_SHARE");
});

test("a retrieval response opens only for the request digest it answers", async () => {
  const owner = await generateHpkeKeyPair();
  const digest = `0x${"11".repeat(32)}` as const;
  const response = await sealRetrievalResponse(owner.publicKey, at(3), digest, set.shares[3]!);
  assert.deepEqual(await openRetrievalResponse(owner.privateKey, at(3), digest, response), set.shares[3]);
  await rejectsWith(openRetrievalResponse(owner.privateKey, at(3), `0x${"22".repeat(32)}`, response), "WRONG_BINDING");
  await rejectsWith(openRetrievalResponse(owner.privateKey, at(2), digest, response), "WRONG_BINDING");
  await rejectsWith(openShare(owner.privateKey, "transfer", at(3), { ...response, seq: 0 }), "WRONG_BINDING");
  assert.ok(!contains(response.ciphertext, canary));
});

test("a batch for one key is one HPKE context: one enc, seq 0, 1, 2, …; each envelope opens only at its own address and seq", async () => {
  const enclave = await generateHpkeKeyPair();
  const other = await splitSecret(otherToken, canary, { threshold: 3, shareCount: 5 });
  const sealer = new ShareSealer(enclave.publicKey, "store");
  const batch = [
    { a: at(2), share: set.shares[2]!, d: set },
    { a: { binding: otherToken, version: 1n, slot: 2 }, share: other.shares[2]!, d: other },
  ].map((x) => ({ ...x, envelope: sealer.seal(x.a, x.share) }));
  assert.deepEqual(batch.map((b) => b.envelope.seq), [0, 1]);
  assert.deepEqual(batch[0]!.envelope.enc, batch[1]!.envelope.enc, "one encapsulation for the batch");

  const opener = new ShareOpener(enclave.privateKey, "store");
  for (const b of batch) assert.deepEqual(opener.openVerified(b.d.descriptor, b.d.root, 2, b.envelope), b.share);
  // The same context, but another message's address, or another sequence number: neither opens.
  assert.throws(() => opener.open(at(2), batch[1]!.envelope), (e: unknown) => (e as { code?: string }).code === "WRONG_BINDING");
  assert.throws(() => opener.open(at(2), { ...batch[0]!.envelope, seq: 1 }), (e: unknown) => (e as { code?: string }).code === "WRONG_BINDING");
  assert.throws(() => new ShareOpener(enclave.privateKey, "transfer").open(at(2), batch[0]!.envelope), (e: unknown) => (e as { code?: string }).code === "WRONG_BINDING");
  // Another chain or vault is another context (its info binds them), so a new encapsulation.
  const elsewhere = sealer.seal(at(2, { binding: { ...binding, chainId: 1n } }), set.shares[2]!);
  assert.notDeepEqual(elsewhere.enc, batch[0]!.envelope.enc);
  assert.equal(elsewhere.seq, 0);
  assert.ok(batch.every((b) => !contains(b.envelope.ciphertext, canary) && !contains(b.envelope.ciphertext, b.share.share)), "no plaintext in the batch");
});
