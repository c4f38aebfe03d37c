/** Retrieval by the owner: the EIP-712 request, the slot enclave's checks, and the owner's verified recombination. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { sealRetrievalResponse } from "../../src/protocol/vault-envelopes.ts";
import { recoverSecret, type RetrievalResponse } from "../../src/protocol/vault-recover.ts";
import {
  MemoryRetrievalNonceStore,
  retrievalRequestDigest,
  signRetrievalRequest,
  vaultDomain,
  verifyRetrievalRequest,
  type RetrievalExpectation,
  type SignedRetrievalRequest,
} from "../../src/protocol/vault-retrieval.ts";
import { splitSecret, type VaultShare } from "../../src/protocol/vault-shares.ts";
import { binding, canary, contains, rejectsWith, vault } from "./vault-fixtures.ts";

const domain = vaultDomain(31337, vault);
const owner = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());

async function request(signer = owner, over: { currentBlock?: bigint; validityBlocks?: bigint; tokenId?: bigint } = {}) {
  const ephemeral = await generateHpkeKeyPair();
  const signed = await signRetrievalRequest(signer, domain, {
    tokenId: over.tokenId ?? binding.tokenId,
    ownerKey: ephemeral.publicKey,
    currentBlock: over.currentBlock ?? 100n,
    validityBlocks: over.validityBlocks ?? 5n,
  });
  return { signed, ephemeral };
}

function expect(over: Partial<RetrievalExpectation> = {}): RetrievalExpectation {
  return { domain, tokenId: binding.tokenId, owner: owner.address, trustedBlock: 102n, nonces: new MemoryRetrievalNonceStore(), ...over };
}

/** JSON as a request crosses the host: bigints become decimal strings. */
function overTheWire(s: SignedRetrievalRequest): unknown {
  return JSON.parse(JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)));
}

test("the owner of record's request is accepted, from JSON too, with its digest and ephemeral key", async () => {
  const { signed, ephemeral } = await request();
  const verified = await verifyRetrievalRequest(overTheWire(signed), expect());
  assert.deepEqual(verified.ownerKey, ephemeral.publicKey);
  assert.equal(verified.digest, retrievalRequestDigest(domain, signed.message));
  assert.equal(verified.request.notAfterBlock, 105n);
});

test("a request not signed by the current owner is refused: a stranger, the old owner after a transfer, an altered message", async () => {
  await rejectsWith(verifyRetrievalRequest((await request(stranger)).signed, expect()), "WRONG_OWNER");
  const { signed } = await request(owner);
  await rejectsWith(verifyRetrievalRequest(signed, expect({ owner: stranger.address })), "WRONG_OWNER");
  const altered = { ...signed, message: { ...signed.message, notAfterBlock: signed.message.notAfterBlock + 1000n } };
  await rejectsWith(verifyRetrievalRequest(altered, expect({ maxValidityBlocks: 2000n })), "WRONG_OWNER");
  const otherKey = { ...signed, message: { ...signed.message, ownerKey: `0x${"ab".repeat(32)}` as const } };
  await rejectsWith(verifyRetrievalRequest(otherKey, expect()), "WRONG_OWNER");
});

test("a request outside its block window is refused: expired, not yet valid, or a window too long", async () => {
  const { signed } = await request(owner, { currentBlock: 100n, validityBlocks: 5n });
  await verifyRetrievalRequest(signed, expect({ trustedBlock: 100n }));
  await verifyRetrievalRequest(signed, expect({ trustedBlock: 105n }));
  await rejectsWith(verifyRetrievalRequest(signed, expect({ trustedBlock: 106n })), "REQUEST_EXPIRED");
  await rejectsWith(verifyRetrievalRequest(signed, expect({ trustedBlock: 99n })), "REQUEST_EXPIRED");
  const long = await request(owner, { validityBlocks: 65n });
  await rejectsWith(verifyRetrievalRequest(long.signed, expect()), "REQUEST_EXPIRED");
  await verifyRetrievalRequest(long.signed, expect({ maxValidityBlocks: 100n }));
});

test("a replayed request is refused; a refused request does not burn its nonce; each enclave keeps its own store", async () => {
  const nonces = new MemoryRetrievalNonceStore();
  const { signed } = await request();
  await rejectsWith(verifyRetrievalRequest(signed, expect({ nonces, trustedBlock: 200n })), "REQUEST_EXPIRED");
  assert.equal(nonces.size, 0);
  await verifyRetrievalRequest(signed, expect({ nonces }));
  await rejectsWith(verifyRetrievalRequest(overTheWire(signed), expect({ nonces })), "REQUEST_REPLAYED");
  await verifyRetrievalRequest(signed, expect({ nonces: new MemoryRetrievalNonceStore() }));
  nonces.prune(105n);
  assert.equal(nonces.size, 1, "kept while the request can still be valid");
  nonces.prune(106n);
  assert.equal(nonces.size, 0);
});

test("wrong vault, chain or token, and malformed requests are refused with their own codes", async () => {
  const { signed } = await request();
  await rejectsWith(verifyRetrievalRequest(signed, expect({ domain: vaultDomain(1, vault) })), "REQUEST_WRONG_DOMAIN");
  await rejectsWith(verifyRetrievalRequest(signed, expect({ domain: vaultDomain(31337, "0x0000000000000000000000000000000000000001") })), "REQUEST_WRONG_DOMAIN");
  await rejectsWith(verifyRetrievalRequest(signed, expect({ tokenId: 8n })), "REQUEST_WRONG_TOKEN");
  await rejectsWith(verifyRetrievalRequest({ ...signed, signature: "0x1234" }, expect()), "REQUEST_MALFORMED");
  await rejectsWith(verifyRetrievalRequest({ ...signed, signature: `0x${"00".repeat(65)}` }, expect()), "REQUEST_MALFORMED");
  await rejectsWith(verifyRetrievalRequest({ ...signed, message: { ...signed.message, ownerKey: "0x12" } }, expect()), "REQUEST_MALFORMED");
  await rejectsWith(verifyRetrievalRequest(null, expect()), "REQUEST_MALFORMED");
  await rejectsWith(signRetrievalRequest(owner, domain, { tokenId: 7n, ownerKey: new Uint8Array(31), currentBlock: 1n, validityBlocks: 1n }), "INVALID_ARGUMENT");
});

test("end to end: 5 slot enclaves, 2 down, one lying; the owner recovers the secret from 3 checked shares", async () => {
  const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });
  const { signed, ephemeral } = await request();
  const serve = async (share: VaultShare, answering = signed): Promise<RetrievalResponse> => {
    const verified = await verifyRetrievalRequest(overTheWire(answering), expect());
    const sealed = await sealRetrievalResponse(verified.ownerKey, { binding, version: 1n, slot: share.slot }, verified.digest, share);
    return { slot: share.slot, version: 1n, ...sealed };
  };
  const up = await Promise.all([0, 2, 4].map((slot) => serve(set.shares[slot]!)));
  for (const r of up) assert.ok(!contains(r.ciphertext, canary));
  const args = { descriptor: set.descriptor, root: set.root, request: signed, ephemeralPrivateKey: ephemeral.privateKey };
  assert.deepEqual(await recoverSecret({ ...args, responses: up }), canary);

  const flipped = set.shares[1]!.share.slice();
  flipped[0] = flipped[0]! ^ 1;
  const lying = await serve({ ...set.shares[1]!, share: flipped });
  assert.deepEqual(await recoverSecret({ ...args, responses: [lying, ...up] }), canary, "a bad share is set aside");

  const relabelled = { ...up[2]!, slot: 3 };
  const stale = { ...up[1]!, version: 2n };
  const forOtherRequest = await serve(set.shares[3]!, (await request()).signed);
  const error = await recoverSecret({ ...args, responses: [up[0]!, lying, relabelled, stale, forOtherRequest] }).catch((e: unknown) => e);
  assert.ok(error instanceof Error && "code" in error && error.code === "NOT_ENOUGH_SHARES", String(error));
  assert.deepEqual((error as { details?: Record<string, unknown> }).details?.rejected, [
    { slot: 3, code: "WRONG_BINDING" },
    { slot: 2, code: "WRONG_BINDING" },
    { slot: 3, code: "WRONG_BINDING" },
    { slot: 1, code: "TAMPERED_SHARE" },
  ]);
  const other = await request(owner, { tokenId: 8n });
  await rejectsWith(recoverSecret({ ...args, request: other.signed, responses: up }), "INVALID_ARGUMENT");
});
