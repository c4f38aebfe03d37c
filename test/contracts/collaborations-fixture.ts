/** A Collaborations contract on the fixture's chain, with parties, a compute enclave and helpers to sign. */
import { keccak256, stringToBytes, zeroAddress, zeroHash, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { deployCollaborations } from "../../src/chain/deploy.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { approveCollaboration } from "../../src/chain/actions/approve-collaboration.ts";
import { createCollaboration } from "../../src/chain/actions/create-collaboration.ts";
import { readPartyState } from "../../src/chain/actions/read-collaboration.ts";
import {
  approvalTypes,
  collaborationsDomain,
  epsilonToFixed,
  queryDigest,
  runTypes,
  withdrawalTypes,
  type CollaborationParty,
  type CollaborationTerms,
  type RunReport,
} from "../../src/protocol/collaboration.ts";
import { newEnclave, randomDigest, register, startFixture, type Fixture, type TestEnclave } from "./fixture.ts";

export const SQL =
  "SELECT p.category, COUNT(DISTINCT p.customer_id) AS customers, SUM(p.amount) AS total FROM purchases p JOIN cards c ON p.customer_id = c.customer_id WHERE c.tier = 'gold' GROUP BY p.category";
export const COMPUTE_MEASUREMENT = keccak256(stringToBytes("clean-room compute enclave"));

export interface CollabFixture {
  f: Fixture;
  contract: Address;
  deployGas: bigint;
  /** Party accounts (funded operators): retailer, bank, insurer. */
  accounts: PrivateKeyAccount[];
  /** Writers for those accounts (for withdrawals, which the party sends itself). */
  writers: WriterClient[];
  /** Any account that relays signed approvals and runs. */
  relayer: WriterClient;
  /** Registered for parties[0]'s operator with COMPUTE_MEASUREMENT, simulated. */
  enclave: TestEnclave;
  domain: ReturnType<typeof collaborationsDomain>;
}

export async function startCollabFixture(): Promise<CollabFixture> {
  const f = await startFixture();
  const { address, gasUsed } = await deployCollaborations(f.deployer, f.deployment.registry);
  const accounts = f.chain.accounts.operators.slice(0, 3);
  const enclave = newEnclave();
  await register(f, enclave, accounts[0]!.address, { measurement: COMPUTE_MEASUREMENT });
  return {
    f,
    contract: address,
    deployGas: gasUsed,
    accounts,
    writers: f.operators.slice(0, 3),
    relayer: f.requester,
    enclave,
    domain: collaborationsDomain(BigInt(f.chain.chainId), address),
  };
}

export function party(account: Address, overrides: Partial<CollaborationParty> = {}): CollaborationParty {
  return {
    account,
    operator: zeroAddress,
    measurement: COMPUTE_MEASUREMENT,
    manifestDigest: zeroHash,
    manifestRole: zeroHash,
    datasetsDigest: randomDigest(),
    ...overrides,
  };
}

/** Terms for the first `count` parties; party 0 computes with its operator pinned. */
export function makeTerms(c: CollabFixture, overrides: Partial<CollaborationTerms> = {}, count = 2): CollaborationTerms {
  return {
    parties: c.accounts.slice(0, count).map((a, i) => party(a.address, i === 0 ? { operator: a.address } : {})),
    computeParty: 0,
    queryDigest: queryDigest(SQL),
    queryText: SQL,
    queryCid: "",
    policyDigest: randomDigest(),
    maxRuns: 3,
    dpBudget: epsilonToFixed("2.5"),
    recipient: "party:retailer",
    recipientPin: randomDigest(),
    allowSimulated: true,
    ...overrides,
  };
}

export async function create(c: CollabFixture, terms: CollaborationTerms, creator: WriterClient = c.relayer) {
  return createCollaboration(creator, c.contract, terms);
}

export interface ApprovalFor {
  collaborationId: bigint;
  termsHash: Hex;
  queryDigest: Hex;
  policyDigest: Hex;
}

/** `signer`'s signed Approval at `nonce` (its current nonce on chain when omitted). */
export async function signApproval(c: CollabFixture, signer: PrivateKeyAccount, of: ApprovalFor, nonce?: bigint) {
  const n = nonce ?? (await readPartyState(c.f.reader, c.contract, of.collaborationId, signer.address)).nonce;
  const signature = await signer.signTypedData({ domain: c.domain, types: approvalTypes, primaryType: "Approval", message: { ...of, nonce: n } });
  return { collaborationId: of.collaborationId, party: signer.address, nonce: n, signature };
}

/** `signer`'s signed Withdrawal at `nonce` (its current nonce on chain when omitted). */
export async function signWithdrawal(c: CollabFixture, signer: PrivateKeyAccount, collaborationId: bigint, nonce?: bigint) {
  const n = nonce ?? (await readPartyState(c.f.reader, c.contract, collaborationId, signer.address)).nonce;
  const signature = await signer.signTypedData({ domain: c.domain, types: withdrawalTypes, primaryType: "Withdrawal", message: { collaborationId, nonce: n } });
  return { collaborationId, party: signer.address, nonce: n, signature };
}

export function approvalOf(collaborationId: bigint, termsHash: Hex, terms: CollaborationTerms): ApprovalFor {
  return { collaborationId, termsHash, queryDigest: terms.queryDigest, policyDigest: terms.policyDigest };
}

/** Every listed party signs, the relayer sends. */
export async function approveAll(c: CollabFixture, of: ApprovalFor, signers: PrivateKeyAccount[]) {
  const receipts = [];
  for (const signer of signers) receipts.push(await approveCollaboration(c.relayer, c.contract, await signApproval(c, signer, of)));
  return receipts;
}

export function makeReport(runId: number, enclave: Address, overrides: Partial<RunReport> = {}): RunReport {
  return {
    runId,
    enclave,
    inputDigest: randomDigest(),
    resultDigest: randomDigest(),
    provenanceDigest: randomDigest(),
    rowsDelivered: 4n,
    rowsSuppressed: 1n,
    epsilonSpent: epsilonToFixed("1"),
    ...overrides,
  };
}

export function signRun(c: CollabFixture, signer: PrivateKeyAccount, collaborationId: bigint, termsHash: Hex, report: RunReport): Promise<Hex> {
  const { runId, inputDigest, resultDigest, provenanceDigest, rowsDelivered, rowsSuppressed, epsilonSpent } = report;
  return signer.signTypedData({
    domain: c.domain,
    types: runTypes,
    primaryType: "Run",
    message: { collaborationId, runId, termsHash, inputDigest, resultDigest, provenanceDigest, rowsDelivered, rowsSuppressed, epsilonSpent },
  });
}
