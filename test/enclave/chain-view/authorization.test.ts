import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { keccak256, stringToHex, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  authorizationTypes,
  MemoryNonceLedger,
  verifyApprovals,
  verifyAuthorization,
  type Authorization,
  type AuthorizationDomain,
  type ExpectedAuthorization,
} from "../../../src/enclave/chain-view/authorization.ts";
import { ChainViewError } from "../../../src/enclave/chain-view/errors.ts";

const owner = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());
const domain: AuthorizationDomain = { name: "Cloister Pipelines", version: "1", chainId: 31337, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };
const message: Authorization = { kind: "granted-op", scope: keccak256(stringToHex("dataset-7")), digest: keccak256(stringToHex("DELETE rows of 2019")), expiry: 2_000n, nonce: 1n };

async function sign(by = owner, d: AuthorizationDomain = domain, m: Authorization = message) {
  return { domain: d, message: m, signature: await by.signTypedData({ domain: d, types: authorizationTypes, primaryType: "Authorization", message: m }) };
}

function expected(overrides: Partial<ExpectedAuthorization> = {}): ExpectedAuthorization {
  return { domain, kind: message.kind, scope: message.scope, digest: message.digest, now: 1_000n, nonces: new MemoryNonceLedger(), ...overrides };
}

function code(c: string) {
  return (e: unknown) => e instanceof ChainViewError && e.code === c;
}

describe("authorization signatures", () => {
  test("an owner's grant for this job verifies", async () => {
    const signed = await verifyAuthorization(await sign(), owner.address, expected());
    assert.equal(signed.message.nonce, 1n);
  });

  test("an expired grant is refused against the trusted block time", async () => {
    await assert.rejects(verifyAuthorization(await sign(), owner.address, expected({ now: 2_000n })), code("AUTHORIZATION_EXPIRED"));
  });

  test("a grant signed by someone else is refused", async () => {
    await assert.rejects(verifyAuthorization(await sign(stranger), owner.address, expected()), code("AUTHORIZATION_WRONG_SIGNER"));
  });

  test("a grant whose signature was made for another domain than it claims recovers to another signer", async () => {
    const other = await sign(owner, { ...domain, chainId: 1 });
    await assert.rejects(verifyAuthorization({ ...other, domain }, owner.address, expected()), code("AUTHORIZATION_WRONG_SIGNER"));
  });

  test("a grant for another contract or chain is refused as the wrong domain", async () => {
    for (const d of [{ ...domain, chainId: 1 }, { ...domain, verifyingContract: stranger.address }, { ...domain, version: "2" }]) {
      await assert.rejects(verifyAuthorization(await sign(owner, d), owner.address, expected()), code("AUTHORIZATION_WRONG_DOMAIN"));
    }
  });

  test("a grant for another kind, scope or digest is refused", async () => {
    for (const m of [{ ...message, kind: "pipeline-run" }, { ...message, scope: keccak256("0x01") }, { ...message, digest: keccak256("0x02") }]) {
      await assert.rejects(verifyAuthorization(await sign(owner, domain, m), owner.address, expected()), code("AUTHORIZATION_SCOPE_MISMATCH"));
    }
  });

  test("a one-shot grant's nonce is refused the second time; a reusable approval is not", async () => {
    const nonces = new MemoryNonceLedger();
    const signed = await sign();
    await verifyAuthorization(signed, owner.address, expected({ nonces }));
    await assert.rejects(verifyAuthorization(signed, owner.address, expected({ nonces })), code("AUTHORIZATION_NONCE_REPLAYED"));
    await verifyAuthorization(await sign(owner, domain, { ...message, nonce: 2n }), owner.address, expected({ nonces }));
    await verifyAuthorization(signed, owner.address, expected({ nonces: "reusable" }));
    await verifyAuthorization(signed, owner.address, expected({ nonces: "reusable" }));
  });

  test("an authorization that came as JSON (decimal strings) verifies the same", async () => {
    const signed = await sign();
    const json = JSON.parse(JSON.stringify(signed, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
    const verified = await verifyAuthorization(json, owner.address, expected());
    assert.equal(verified.message.expiry, message.expiry);
  });

  test("a malformed authorization or signature is a typed error", async () => {
    const signed = await sign();
    await assert.rejects(verifyAuthorization({ ...signed, signature: "0x1234" }, owner.address, expected()), code("AUTHORIZATION_MALFORMED"));
    await assert.rejects(verifyAuthorization({ ...signed, message: { ...message, expiry: 2n ** 64n } }, owner.address, expected()), code("AUTHORIZATION_MALFORMED"));
    await assert.rejects(verifyAuthorization("not an object", owner.address, expected()), code("AUTHORIZATION_MALFORMED"));
    // r = 0 is no point on the curve: nothing recovers.
    const zeroR = `0x${"00".repeat(32)}${signed.signature.slice(66)}` as const;
    await assert.rejects(verifyAuthorization({ ...signed, signature: zeroR }, owner.address, expected()), code("AUTHORIZATION_MALFORMED"));
  });
});

describe("approvals by every party", () => {
  const parties: Address[] = [owner.address, stranger.address];
  const outsider = privateKeyToAccount(generatePrivateKey());

  test("all parties approved: verified, and each party's nonce is used once", async () => {
    const nonces = new MemoryNonceLedger();
    const raws = [await sign(stranger), await sign(owner)];
    const approvals = await verifyApprovals(raws, parties, expected({ nonces }));
    assert.equal(approvals.length, 2);
    await assert.rejects(verifyApprovals(raws, parties, expected({ nonces })), code("AUTHORIZATION_NONCE_REPLAYED"));
  });

  test("a missing party's approval is refused and no nonce is used", async () => {
    const nonces = new MemoryNonceLedger();
    await assert.rejects(verifyApprovals([await sign(owner)], parties, expected({ nonces })), code("APPROVAL_MISSING"));
    await verifyApprovals([await sign(owner), await sign(stranger)], parties, expected({ nonces }));
  });

  test("an approval by someone not a party is refused", async () => {
    await assert.rejects(verifyApprovals([await sign(owner), await sign(stranger), await sign(outsider)], parties, expected()), code("AUTHORIZATION_WRONG_SIGNER"));
  });

  test("one party's replayed nonce refuses all and records none", async () => {
    const nonces = new MemoryNonceLedger();
    await verifyAuthorization(await sign(stranger), stranger.address, expected({ nonces }));
    await assert.rejects(verifyApprovals([await sign(owner), await sign(stranger)], parties, expected({ nonces })), code("AUTHORIZATION_NONCE_REPLAYED"));
    // The owner's nonce was not recorded by the refused batch.
    await verifyAuthorization(await sign(owner), owner.address, expected({ nonces }));
  });
});
