/** A Grants contract on the fixture's chain: an owner, an operator with an active enclave, and signing helpers. */
import type { Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { deployGrants } from "../../src/chain/deploy.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { createGrant } from "../../src/chain/actions/create-grant.ts";
import { consumeGrantUse } from "../../src/chain/actions/consume-grant-use.ts";
import { datasetId, grantTypes, grantsDomain, operationsMask, statementDigest, useTypes, type GrantTerms } from "../../src/protocol/grants.ts";
import { latestTimestamp, newEnclave, randomDigest, register, startFixture, type Fixture, type TestEnclave } from "./fixture.ts";

export const STATEMENT = "UPDATE customers SET email = NULL WHERE id = 42";

export interface GrantsFixture {
  f: Fixture;
  contract: `0x${string}`;
  deployGas: bigint;
  owner: PrivateKeyAccount;
  /** The owner's writer (direct create and revoke). */
  ownerWriter: WriterClient;
  /** The grants' operator (operators[0]). */
  operator: PrivateKeyAccount;
  /** Sends signed grants and uses (operators[2]). */
  relayer: WriterClient;
  /** Active, registered for `operator`. */
  enclave: TestEnclave;
  /** Active, registered for operators[1]. */
  otherEnclave: TestEnclave;
  domain: ReturnType<typeof grantsDomain>;
}

export async function startGrantsFixture(): Promise<GrantsFixture> {
  const f = await startFixture();
  const { address, gasUsed } = await deployGrants(f.deployer, f.deployment.registry);
  const [operator, other] = f.chain.accounts.operators;
  const enclave = newEnclave();
  const otherEnclave = newEnclave();
  await register(f, enclave, operator!.address, { ttl: 10n ** 8n });
  await register(f, otherEnclave, other!.address, { ttl: 10n ** 8n });
  return {
    f,
    contract: address,
    deployGas: gasUsed,
    owner: f.chain.accounts.requester,
    ownerWriter: f.requester,
    operator: operator!,
    relayer: f.operators[2]!,
    enclave,
    otherEnclave,
    domain: grantsDomain(BigInt(f.chain.chainId), address),
  };
}

/** Terms valid from the latest block for a day, three uses of STATEMENT (update) on "crm.customers". */
export async function makeGrantTerms(g: GrantsFixture, overrides: Partial<GrantTerms> = {}): Promise<GrantTerms> {
  const now = Number(await latestTimestamp(g.f));
  return {
    owner: g.owner.address,
    operator: g.operator.address,
    dataset: datasetId("crm.customers"),
    operations: operationsMask(["update"]),
    statementDigest: statementDigest(STATEMENT),
    purpose: "erase the e-mail of customer 42 (GDPR art. 17 request #981)",
    notBefore: now,
    expiry: now + 86_400,
    maxUses: 3,
    ...overrides,
  };
}

export function signGrant(g: GrantsFixture, signer: PrivateKeyAccount, terms: GrantTerms, salt: Hex): Promise<Hex> {
  return signer.signTypedData({ domain: g.domain, types: grantTypes, primaryType: "Grant", message: { ...terms, salt } });
}

export function signUse(g: GrantsFixture, signer: TestEnclave, grantId: bigint, runId: Hex, provenanceDigest: Hex): Promise<Hex> {
  return signer.account.signTypedData({ domain: g.domain, types: useTypes, primaryType: "Use", message: { grantId, runId, provenanceDigest } });
}

export async function createOwned(g: GrantsFixture, overrides: Partial<GrantTerms> = {}) {
  const terms = await makeGrantTerms(g, overrides);
  return { terms, ...(await createGrant(g.ownerWriter, g.contract, terms)) };
}

/** One use by `signer` (the operator's enclave by default) with a fresh run id and provenance digest. */
export async function use(g: GrantsFixture, grantId: bigint, options: { signer?: TestEnclave; runId?: Hex; provenanceDigest?: Hex } = {}) {
  const runId = options.runId ?? randomDigest();
  const provenanceDigest = options.provenanceDigest ?? randomDigest();
  const signature = await signUse(g, options.signer ?? g.enclave, grantId, runId, provenanceDigest);
  return { runId, provenanceDigest, ...(await consumeGrantUse(g.relayer, g.contract, { grantId, runId, provenanceDigest, signature })) };
}
