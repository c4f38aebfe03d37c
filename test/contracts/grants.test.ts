/**
 * Grants, the happy path: the TypeScript digests and ids equal the contract's,
 * a grant created directly and one relayed from the owner's signature, uses up
 * to maxUses, revocation, cancelling an unrelayed signed grant, and what the
 * owner lists from the logs. Gas per write is printed and bounded (docs/pipelines.md).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readContract } from "viem/actions";
import { grantsAbi } from "../../src/chain/abi/Grants.ts";
import { createGrant, createGrantBySig } from "../../src/chain/actions/create-grant.ts";
import { isRunRecorded, readGrant } from "../../src/chain/actions/read-grant.ts";
import { listGrantUses, listGrants, readGrantRevocation } from "../../src/chain/actions/read-grant-logs.ts";
import { cancelSignedGrant, revokeGrant } from "../../src/chain/actions/revoke-grant.ts";
import { GRANT_OPERATIONS, GrantTermsError, grantDigest, grantId, operationsMask, operationsOf, useDigest } from "../../src/protocol/grants.ts";
import { randomDigest, rejectsWith } from "./fixture.ts";
import { createOwned, makeGrantTerms, signGrant, startGrantsFixture, use, type GrantsFixture } from "./grants-fixture.ts";

function record(t: { diagnostic(message: string): void }, name: string, gas: bigint, ceiling: bigint): void {
  t.diagnostic(`${name}: ${gas} gas`);
  assert.ok(gas <= ceiling, `${name} used ${gas} gas, more than ${ceiling}`);
}

describe("Grants", () => {
  let g: GrantsFixture;
  before(async () => {
    g = await startGrantsFixture();
  });
  after(() => g.f.close());

  test("the TypeScript digests and ids equal the contract's", async () => {
    const terms = await makeGrantTerms(g);
    const salt = randomDigest();
    const read = (functionName: "grantDigest" | "grantIdOf" | "useDigest", args: readonly unknown[]) =>
      readContract(g.f.reader, { address: g.contract, abi: grantsAbi, functionName, args } as never) as Promise<unknown>;
    assert.equal(await read("grantDigest", [terms, salt]), grantDigest(g.domain, terms, salt));
    const id = grantId(BigInt(g.f.chain.chainId), g.contract, g.owner.address, salt);
    assert.equal(await read("grantIdOf", [g.owner.address, salt]), id);
    const runId = randomDigest();
    const prov = randomDigest();
    assert.equal(await read("useDigest", [id, runId, prov]), useDigest(g.domain, id, runId, prov));
  });

  test("deploy", (t) => {
    record(t, "deploy", g.deployGas, 1_800_000n);
  });

  test("operations masks", () => {
    assert.equal(operationsMask(["read", "delete"]), GRANT_OPERATIONS.read | GRANT_OPERATIONS.delete);
    assert.deepEqual(operationsOf(operationsMask(["update", "insert"])), ["insert", "update"]);
    assert.throws(() => operationsMask(["drop"]), (err: unknown) => err instanceof GrantTermsError && err.code === "INVALID_GRANT_OPERATION");
  });

  test("the owner creates a grant; its enclave uses it up to maxUses; the owner lists the uses", async (t) => {
    const terms = await makeGrantTerms(g, { maxUses: 2 });
    const salt = randomDigest();
    const created = await createGrant(g.ownerWriter, g.contract, terms, salt);
    assert.equal(created.grantId, grantId(BigInt(g.f.chain.chainId), g.contract, g.owner.address, salt));
    record(t, "createGrant", created.gasUsed, 150_000n);

    const stored = await readGrant(g.f.reader, g.contract, created.grantId);
    assert.deepEqual(
      { ...stored },
      {
        grantId: created.grantId,
        exists: true,
        cancelledUnused: false,
        owner: terms.owner,
        operator: terms.operator,
        dataset: terms.dataset,
        operations: terms.operations,
        statementDigest: terms.statementDigest,
        notBefore: terms.notBefore,
        expiry: terms.expiry,
        maxUses: 2,
        uses: 0,
        revoked: false,
      },
    );

    const first = await use(g, created.grantId);
    record(t, "consumeUse (first)", first.gasUsed, 80_000n);
    const second = await use(g, created.grantId);
    record(t, "consumeUse (second)", second.gasUsed, 70_000n);
    assert.equal((await readGrant(g.f.reader, g.contract, created.grantId)).uses, 2);
    assert.equal(await isRunRecorded(g.f.reader, g.contract, created.grantId, first.runId), true);
    assert.equal(await isRunRecorded(g.f.reader, g.contract, created.grantId, randomDigest()), false);

    const uses = await listGrantUses(g.f.reader, g.contract, created.grantId);
    assert.deepEqual(
      uses.map(({ runId, provenanceDigest, enclave, use: n }) => ({ runId, provenanceDigest, enclave, use: n })),
      [
        { runId: first.runId, provenanceDigest: first.provenanceDigest, enclave: g.enclave.address, use: 1 },
        { runId: second.runId, provenanceDigest: second.provenanceDigest, enclave: g.enclave.address, use: 2 },
      ],
    );
    await rejectsWith(use(g, created.grantId), "GrantUsedUp");
  });

  test("a grant the owner signed is relayed by anyone; the owner revokes it; the revocation is in the logs", async (t) => {
    const terms = await makeGrantTerms(g, { operations: operationsMask(["read", "insert", "update", "delete"]) });
    const salt = randomDigest();
    const created = await createGrantBySig(g.relayer, g.contract, terms, salt, await signGrant(g, g.owner, terms, salt));
    record(t, "createGrantBySig", created.gasUsed, 160_000n);
    const [logged] = (await listGrants(g.f.reader, g.contract, { owner: g.owner.address })).filter((l) => l.grantId === created.grantId);
    assert.ok(logged);
    assert.deepEqual(logged.terms, terms);
    assert.equal(logged.salt, salt);
    assert.equal(logged.relayer, g.relayer.account.address);

    await use(g, created.grantId);
    assert.equal(await readGrantRevocation(g.f.reader, g.contract, created.grantId), null);
    const revoked = await revokeGrant(g.ownerWriter, g.contract, created.grantId);
    record(t, "revokeGrant", revoked.gasUsed, 40_000n);
    const revocation = await readGrantRevocation(g.f.reader, g.contract, created.grantId);
    assert.deepEqual({ owner: revocation?.owner, uses: revocation?.uses, created: revocation?.created }, { owner: g.owner.address, uses: 1, created: true });
    assert.equal((await readGrant(g.f.reader, g.contract, created.grantId)).revoked, true);
    await rejectsWith(use(g, created.grantId), "GrantIsRevoked");
  });

  test("the owner voids a signed grant nobody relayed: relaying it then fails", async (t) => {
    const terms = await makeGrantTerms(g);
    const salt = randomDigest();
    const signature = await signGrant(g, g.owner, terms, salt);
    const cancelled = await cancelSignedGrant(g.ownerWriter, g.contract, salt);
    record(t, "cancelSignedGrant", cancelled.gasUsed, 60_000n);
    const id = grantId(BigInt(g.f.chain.chainId), g.contract, g.owner.address, salt);
    const state = await readGrant(g.f.reader, g.contract, id);
    assert.deepEqual({ exists: state.exists, cancelledUnused: state.cancelledUnused, revoked: state.revoked }, { exists: true, cancelledUnused: true, revoked: true });
    assert.equal((await readGrantRevocation(g.f.reader, g.contract, id))?.created, false);
    await rejectsWith(createGrantBySig(g.relayer, g.contract, terms, salt, signature), "GrantExists");
  });

  test("grants are listed by operator", async () => {
    const mine = await createOwned(g, { operator: g.f.chain.accounts.operators[1]!.address });
    const listed = await listGrants(g.f.reader, g.contract, { operator: g.f.chain.accounts.operators[1]!.address });
    assert.deepEqual(listed.map((l) => l.grantId), [mine.grantId]);
    assert.ok((await listGrants(g.f.reader, g.contract, { operator: g.operator.address })).every((l) => l.terms.operator === g.operator.address));
  });

  test("a long purpose is emitted whole, not stored", async (t) => {
    const purpose = "x".repeat(500);
    const created = await createOwned(g, { purpose });
    record(t, "createGrant (500-byte purpose)", created.gasUsed, 200_000n);
    const [logged] = (await listGrants(g.f.reader, g.contract, { owner: g.owner.address })).filter((l) => l.grantId === created.grantId);
    assert.equal(logged?.terms.purpose, purpose);
  });
});
