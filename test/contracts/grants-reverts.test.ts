/** Every revert of Grants, each with the custom error and arguments it names. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { zeroAddress, zeroHash, type Hex } from "viem";
import { createGrant, createGrantBySig } from "../../src/chain/actions/create-grant.ts";
import { consumeGrantUse } from "../../src/chain/actions/consume-grant-use.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { cancelSignedGrant, revokeGrant } from "../../src/chain/actions/revoke-grant.ts";
import { grantId, type GrantTerms } from "../../src/protocol/grants.ts";
import { advanceTime, latestTimestamp, newEnclave, randomDigest, register, rejectsWith } from "./fixture.ts";
import { createOwned, makeGrantTerms, signGrant, signUse, startGrantsFixture, use, type GrantsFixture } from "./grants-fixture.ts";

describe("Grants reverts", () => {
  let g: GrantsFixture;
  before(async () => {
    g = await startGrantsFixture();
  });
  after(() => g.f.close());

  describe("createGrant", () => {
    const invalid: [string, (t: GrantTerms, now: number) => void, RegExp][] = [
      ["a zero operator", (t) => void (t.operator = zeroAddress), /operator is the zero address/],
      ["a zero dataset", (t) => void (t.dataset = zeroHash), /dataset is zero/],
      ["no operation", (t) => void (t.operations = 0), /nonzero mask/],
      ["an operation bit past delete", (t) => void (t.operations = 16), /nonzero mask/],
      ["a zero statement digest", (t) => void (t.statementDigest = zeroHash), /statementDigest is zero/],
      ["no purpose", (t) => void (t.purpose = ""), /no purpose/],
      ["expiry equal to notBefore", (t) => void (t.expiry = t.notBefore), /not after notBefore/],
      ["expiry before notBefore", (t) => void (t.expiry = t.notBefore - 1), /not after notBefore/],
      ["an expiry in the past", (t, now) => Object.assign(t, { notBefore: now - 100, expiry: now - 1 }), /expiry has passed/],
      ["maxUses 0", (t) => void (t.maxUses = 0), /maxUses is zero/],
    ];
    for (const [what, mutate, reason] of invalid) {
      test(`InvalidGrant: ${what}`, async () => {
        const terms = await makeGrantTerms(g);
        mutate(terms, Number(await latestTimestamp(g.f)));
        const err = await rejectsWith(createGrant(g.ownerWriter, g.contract, terms), "InvalidGrant");
        assert.match(String(err.args.reason), reason);
      });
    }

    test("NotTheOwner: the sender is not terms.owner", async () => {
      const terms = await makeGrantTerms(g);
      const err = await rejectsWith(createGrant(g.relayer, g.contract, terms), "NotTheOwner");
      assert.deepEqual(err.args, { caller: g.relayer.account.address, owner: g.owner.address });
    });

    test("GrantExists: the same owner and salt twice", async () => {
      const terms = await makeGrantTerms(g);
      const { grantId: id, salt } = await createGrant(g.ownerWriter, g.contract, terms);
      const err = await rejectsWith(createGrant(g.ownerWriter, g.contract, terms, salt), "GrantExists");
      assert.equal(err.args.grantId, id);
    });
  });

  describe("createGrantBySig", () => {
    test("InvalidGrantSignature: signed by another account", async () => {
      const terms = await makeGrantTerms(g);
      const salt = randomDigest();
      const err = await rejectsWith(createGrantBySig(g.relayer, g.contract, terms, salt, await signGrant(g, g.operator, terms, salt)), "InvalidGrantSignature");
      assert.deepEqual(err.args, { owner: g.owner.address, recovered: g.operator.address });
    });

    const widened: [string, Partial<GrantTerms>][] = [
      ["more operations", { operations: 15 }],
      ["another statement", { statementDigest: randomDigest() }],
      ["more uses", { maxUses: 100 }],
      ["another operator", { operator: zeroAddress.replace(/0$/, "1") as `0x${string}` }],
      ["another purpose", { purpose: "anything" }],
    ];
    for (const [what, change] of widened) {
      test(`InvalidGrantSignature: the relayer changes the terms (${what})`, async () => {
        const terms = await makeGrantTerms(g);
        const salt = randomDigest();
        const signature = await signGrant(g, g.owner, terms, salt);
        await rejectsWith(createGrantBySig(g.relayer, g.contract, { ...terms, ...change }, salt, signature), "InvalidGrantSignature");
      });
    }

    test("InvalidGrantSignature: another salt than signed", async () => {
      const terms = await makeGrantTerms(g);
      const signature = await signGrant(g, g.owner, terms, randomDigest());
      await rejectsWith(createGrantBySig(g.relayer, g.contract, terms, randomDigest(), signature), "InvalidGrantSignature");
    });

    test("GrantExists: the signed grant relayed twice", async () => {
      const terms = await makeGrantTerms(g);
      const salt = randomDigest();
      const signature = await signGrant(g, g.owner, terms, salt);
      const { grantId: id } = await createGrantBySig(g.relayer, g.contract, terms, salt, signature);
      const err = await rejectsWith(createGrantBySig(g.relayer, g.contract, terms, salt, signature), "GrantExists");
      assert.equal(err.args.grantId, id);
    });

    test("ECDSAInvalidSignatureLength: a malformed signature", async () => {
      const terms = await makeGrantTerms(g);
      await rejectsWith(createGrantBySig(g.relayer, g.contract, terms, randomDigest(), "0x1234"), "ECDSAInvalidSignatureLength");
    });
  });

  describe("revokeGrant and cancelSignedGrant", () => {
    test("UnknownGrant", async () => {
      const err = await rejectsWith(revokeGrant(g.ownerWriter, g.contract, 12345n), "UnknownGrant");
      assert.equal(err.args.grantId, 12345n);
    });

    test("NotGrantOwner: the operator tries to revoke", async () => {
      const { grantId: id } = await createOwned(g);
      const err = await rejectsWith(revokeGrant(g.relayer, g.contract, id), "NotGrantOwner");
      assert.deepEqual(err.args, { grantId: id, caller: g.relayer.account.address, owner: g.owner.address });
    });

    test("GrantIsRevoked: revoked twice", async () => {
      const { grantId: id } = await createOwned(g);
      await revokeGrant(g.ownerWriter, g.contract, id);
      await rejectsWith(revokeGrant(g.ownerWriter, g.contract, id), "GrantIsRevoked");
    });

    test("GrantExists: cancelling a grant already created", async () => {
      const { salt, grantId: id } = await createOwned(g);
      const err = await rejectsWith(cancelSignedGrant(g.ownerWriter, g.contract, salt), "GrantExists");
      assert.equal(err.args.grantId, id);
    });

    test("GrantIsRevoked: revoking a cancelled id", async () => {
      const salt = randomDigest();
      await cancelSignedGrant(g.ownerWriter, g.contract, salt);
      await rejectsWith(revokeGrant(g.ownerWriter, g.contract, grantId(BigInt(g.f.chain.chainId), g.contract, g.owner.address, salt)), "GrantIsRevoked");
    });
  });

  describe("consumeUse", () => {
    test("UnknownGrant: no such grant", async () => {
      await rejectsWith(use(g, 777n), "UnknownGrant");
    });

    test("UnknownGrant: an id cancelled before it was relayed", async () => {
      const salt = randomDigest();
      await cancelSignedGrant(g.ownerWriter, g.contract, salt);
      await rejectsWith(use(g, grantId(BigInt(g.f.chain.chainId), g.contract, g.owner.address, salt)), "UnknownGrant");
    });

    test("GrantIsRevoked", async () => {
      const { grantId: id } = await createOwned(g);
      await revokeGrant(g.ownerWriter, g.contract, id);
      const err = await rejectsWith(use(g, id), "GrantIsRevoked");
      assert.equal(err.args.grantId, id);
    });

    test("GrantNotYetValid, then usable once notBefore is reached", async () => {
      const now = Number(await latestTimestamp(g.f));
      const { grantId: id } = await createOwned(g, { notBefore: now + 1000, expiry: now + 5000 });
      const err = await rejectsWith(use(g, id), "GrantNotYetValid");
      assert.equal(err.args.notBefore, now + 1000);
      await advanceTime(g.f, 1000n);
      await use(g, id);
    });

    test("GrantExpired: at and after expiry", async () => {
      const now = Number(await latestTimestamp(g.f));
      const { grantId: id } = await createOwned(g, { notBefore: now - 10, expiry: now + 100 });
      await use(g, id);
      await advanceTime(g.f, 100n);
      const err = await rejectsWith(use(g, id), "GrantExpired");
      assert.equal(err.args.expiry, now + 100);
    });

    test("GrantUsedUp", async () => {
      const { grantId: id } = await createOwned(g, { maxUses: 1 });
      await use(g, id);
      const err = await rejectsWith(use(g, id), "GrantUsedUp");
      assert.deepEqual(err.args, { grantId: id, maxUses: 1 });
    });

    test("RunAlreadyRecorded: one run id recorded once", async () => {
      const { grantId: id } = await createOwned(g);
      const { runId } = await use(g, id);
      const err = await rejectsWith(use(g, id, { runId }), "RunAlreadyRecorded");
      assert.deepEqual(err.args, { grantId: id, runId });
    });

    test("ProvenanceMissing: a zero provenance digest", async () => {
      const { grantId: id } = await createOwned(g);
      await rejectsWith(use(g, id, { provenanceDigest: zeroHash }), "ProvenanceMissing");
    });

    test("WrongEnclaveOperator: an active enclave of another operator", async () => {
      const { grantId: id } = await createOwned(g);
      const err = await rejectsWith(use(g, id, { signer: g.otherEnclave }), "WrongEnclaveOperator");
      assert.deepEqual(err.args, { enclave: g.otherEnclave.address, operator: g.f.chain.accounts.operators[1]!.address, required: g.operator.address });
    });

    test("EnclaveNotActive: a key no registered enclave holds", async () => {
      const { grantId: id } = await createOwned(g);
      const stranger = newEnclave();
      const err = await rejectsWith(use(g, id, { signer: stranger }), "EnclaveNotActive");
      assert.equal(err.args.enclave, stranger.address);
    });

    test("EnclaveNotActive: the operator's enclave once revoked from the registry", async () => {
      const { grantId: id } = await createOwned(g);
      const enclave = newEnclave();
      await register(g.f, enclave, g.operator.address);
      await use(g, id, { signer: enclave });
      await revokeEnclave(g.f.attester, g.f.deployment.registry, enclave.address);
      await rejectsWith(use(g, id, { signer: enclave }), "EnclaveNotActive");
    });

    test("EnclaveNotActive: a signature over another provenance digest recovers another key", async () => {
      const { grantId: id } = await createOwned(g);
      const runId = randomDigest();
      const signature = await signUse(g, g.enclave, id, runId, randomDigest());
      await rejectsWith(consumeGrantUse(g.relayer, g.contract, { grantId: id, runId, provenanceDigest: randomDigest(), signature }), "EnclaveNotActive");
    });

    test("EnclaveNotActive: a use signed for another grant", async () => {
      const { grantId: a } = await createOwned(g);
      const { grantId: b } = await createOwned(g);
      const runId = randomDigest();
      const provenanceDigest = randomDigest();
      const signature: Hex = await signUse(g, g.enclave, a, runId, provenanceDigest);
      await rejectsWith(consumeGrantUse(g.relayer, g.contract, { grantId: b, runId, provenanceDigest, signature }), "EnclaveNotActive");
    });
  });
});
