/**
 * What the dashboard's tests and screenshots show beyond tasks: a devnet with
 * work on it. Collaborations, Pipelines, Grants and SecretVault are not yet
 * deployed by deployCloister (their issues are landing separately), so this
 * deploys them on the devnet's chain with the existing helpers and creates
 * one collaboration, pipeline, grant, vault cluster and vault token, each as
 * its owner would, from the devnet's requester account.
 *
 * Runs, grant uses and share confirmations are signed by enclaves, and the
 * enclave code of those issues is not on this branch: so the fixture
 * registers two TEST enclaves of its own (keys it holds, registered by the
 * devnet's well-known attester account, evidence that is not evidence) and
 * signs with them what the contracts check: an approved collaboration run
 * (whose records are not on IPFS), an anchored pipeline run, a grant use
 * (whose record on IPFS is no signed record: tampered), and both slots' share confirmations
 * (the token synced), a re-share to version 2 and its confirmations; then
 * the attester revokes the second test enclave. The dashboard shows those two enclaves as SIMULATED with
 * evidence NOT verified, as it must.
 */
import { keccak256, toHex, zeroAddress, zeroHash, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { readContract } from "viem/actions";
import { collaborationsAbi } from "../../src/chain/abi/Collaborations.ts";
import { grantsAbi } from "../../src/chain/abi/Grants.ts";
import { pipelinesAbi } from "../../src/chain/abi/Pipelines.ts";
import { secretVaultAbi } from "../../src/chain/abi/SecretVault.ts";
import { anchorPipelineRun } from "../../src/chain/actions/anchor-pipeline-run.ts";
import { approveCollaboration } from "../../src/chain/actions/approve-collaboration.ts";
import { confirmShares } from "../../src/chain/actions/confirm-shares.ts";
import { consumeGrantUse } from "../../src/chain/actions/consume-grant-use.ts";
import { recordRun } from "../../src/chain/actions/record-run.ts";
import { reshareSecret } from "../../src/chain/actions/reshare-secret.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { reshareTypes, vaultContractDomain } from "../../src/protocol/vault-contract.ts";
import { onChainMeasurement, registerEnclave } from "../../src/chain/actions/register-enclave.ts";
import { devPrivateKeys } from "../../src/chain/dev-accounts.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { createCluster } from "../../src/chain/actions/create-cluster.ts";
import { createCollaboration } from "../../src/chain/actions/create-collaboration.ts";
import { createGrant } from "../../src/chain/actions/create-grant.ts";
import { registerPipeline } from "../../src/chain/actions/register-pipeline.ts";
import { storeSecret } from "../../src/chain/actions/store-secret.ts";
import { chainDefinition, createWriterClient } from "../../src/chain/clients.ts";
import { deployCollaborations, deployGrants, deployPipelines, deploySecretVault } from "../../src/chain/deploy.ts";
import { devUserKeys } from "../../src/chain/dev-accounts.ts";
import { localAccount } from "../../src/crypto/secp256k1-account.ts";
import { sha256 } from "../../src/crypto/sha256.ts";
import type { MultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import { queryDigest } from "../../src/protocol/collaboration.ts";

export interface OptionalSections {
  /** The fixture's own test enclaves (not attested); the second is revoked. */
  testEnclaves: Address[];
  collaborations: Address;
  pipelines: Address;
  grants: Address;
  vault: Address;
  collaborationId: bigint;
  pipelineId: bigint;
  grantId: bigint;
  cluster: bigint;
  tokenId: bigint;
}

/** Needs a devnet of at least two nodes (a vault cluster has two enclaves or more). */
export async function populateOptionalSections(devnet: MultiProcessDevnet): Promise<OptionalSections> {
  const writer = createWriterClient({ endpoint: { rpcUrl: devnet.rpcUrl }, chain: chainDefinition(devnet.chainId, devnet.rpcUrl), account: localAccount(devnet.requesterKey), pollingInterval: 20 });
  const registry = devnet.deployment.registry;
  const [collaborations, pipelines, grants, vault] = [
    (await deployCollaborations(writer, registry)).address,
    (await deployPipelines(writer, registry)).address,
    (await deployGrants(writer, registry)).address,
    (await deploySecretVault(writer, { registry })).address,
  ];
  // Two test enclaves, registered by the devnet's attester for node 0's operator, with the devnet's measurement.
  const attester = createWriterClient({ endpoint: { rpcUrl: devnet.rpcUrl }, chain: chainDefinition(devnet.chainId, devnet.rpcUrl), account: localAccount(devPrivateKeys(0).attester), pollingInterval: 20 });
  const operator = devnet.nodes[0]!.operator as Address;
  const store = openKuboStore(devnet.ipfsUrl);
  const notEvidence = await store.put(new TextEncoder().encode("not evidence: a test enclave of test/dashboard/fixture.ts"));
  // The grant use's record: on IPFS at the digest its use records, but not a record any enclave signed.
  const tamperedRecord = new TextEncoder().encode(JSON.stringify({ payloadType: "application/vnd.in-toto+json", payload: "dGFtcGVyZWQ=", signatures: [] }));
  await store.put(tamperedRecord);
  await store.close();
  const now = (await writer.getBlock()).timestamp;
  const testKeys = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())];
  for (const key of testKeys) {
    await registerEnclave(attester, registry, { enclave: key.address, operator, hpkePublicKey: keccak256(key.address), teeType: "SGX", simulated: true, measurement: onChainMeasurement(`0x${devnet.measurement}`), expiry: now + 86_400n, evidenceCid: notEvidence });
  }
  const [a, b] = testKeys as [(typeof testKeys)[0], (typeof testKeys)[0]];
  const sign = (account: typeof a, hash: Hex) => account.sign({ hash });

  // A collaboration both parties approve (EIP-712 approvals, relayed), with one run recorded by test enclave a.
  const partnerKey = devUserKeys()[1]!;
  const partner = localAccount(partnerKey).address;
  const sql = "SELECT region, count(*) FROM sales GROUP BY region";
  const party = (account: Address) => ({ account, operator: zeroAddress, measurement: onChainMeasurement(`0x${devnet.measurement}`), manifestDigest: zeroHash, manifestRole: zeroHash, datasetsDigest: keccak256(toHex(account)) });
  const collab = await createCollaboration(writer, collaborations, {
    parties: [party(writer.account.address), party(partner)],
    computeParty: 0,
    queryDigest: queryDigest(sql),
    queryText: sql,
    queryCid: "",
    policyDigest: keccak256(toHex("policy")),
    maxRuns: 3,
    dpBudget: 1_000_000n,
    recipient: "party:retailer",
    recipientPin: keccak256(toHex("pin")),
    allowSimulated: true,
  });
  const collaborationId = collab.collaborationId;
  for (const key of [devnet.requesterKey, partnerKey]) {
    const account = privateKeyToAccount(key);
    const digest = await readContract(writer, { address: collaborations, abi: collaborationsAbi, functionName: "approvalDigest", args: [collaborationId, 0n] });
    await approveCollaboration(writer, collaborations, { collaborationId, party: account.address, nonce: 0n, signature: await account.sign({ hash: digest }) });
  }
  const report = { runId: 1, enclave: a.address, inputDigest: keccak256(toHex("inputs")), resultDigest: keccak256(toHex("result")), provenanceDigest: keccak256(toHex("collab provenance")), rowsDelivered: 12n, rowsSuppressed: 3n, epsilonSpent: 250_000n };
  await recordRun(writer, collaborations, collaborationId, report, await sign(a, await readContract(writer, { address: collaborations, abi: collaborationsAbi, functionName: "runDigest", args: [collaborationId, report] })));

  // A pipeline with one run anchored by test enclave a.
  const pipeline = await registerPipeline(writer, pipelines, { pipelineDigest: keccak256(toHex("pipeline")), candidates: [a.address, ...devnet.nodes.map((n) => n.signer as Address)], schedule: "*/5 * * * *" });
  const anchor = { runId: keccak256(toHex("run 1")), cursorBefore: zeroHash, cursorAfter: keccak256(toHex("cursor 1")), recordsRead: 120n, recordsWritten: 118n, provenanceDigest: keccak256(toHex("pipeline provenance")) };
  await anchorPipelineRun(writer, pipelines, pipeline.pipelineId, anchor, await sign(a, await readContract(writer, { address: pipelines, abi: pipelinesAbi, functionName: "runDigest", args: [pipeline.pipelineId, anchor] })));

  // A grant to node 0's operator, used once by test enclave a.
  const grant = await createGrant(writer, grants, { owner: writer.account.address, operator, dataset: keccak256(toHex("dataset")), operations: 1, statementDigest: keccak256(toHex("statement")), purpose: "dashboard test", notBefore: 0, expiry: 4_000_000_000, maxUses: 5 });
  const useRun = keccak256(toHex("use 1"));
  const useProvenance = sha256(tamperedRecord);
  const useDigest = await readContract(writer, { address: grants, abi: grantsAbi, functionName: "useDigest", args: [grant.grantId, useRun, useProvenance] });
  await consumeGrantUse(writer, grants, { grantId: grant.grantId, runId: useRun, provenanceDigest: useProvenance, signature: await sign(a, useDigest) });

  // A vault cluster of the two test enclaves and a 2-of-2 token both slots confirm (synced).
  const cluster = await createCluster(writer, vault, [a.address, b.address]);
  const secret = await storeSecret(writer, vault, { salt: keccak256(toHex("salt")), threshold: 2, shares: 2, sharesRoot: keccak256(toHex("root")) });
  const confirmBoth = async (version: bigint) => {
    const shares = [{ tokenId: secret.tokenId, version }];
    const confirmations = await Promise.all(
      [a, b].map(async (key, slot) => ({
        cluster: cluster.cluster,
        slot,
        shares,
        signature: await sign(key, await readContract(writer, { address: vault, abi: secretVaultAbi, functionName: "confirmationDigest", args: [cluster.cluster, 0, slot, shares] })),
      })),
    );
    await confirmShares(writer, vault, confirmations);
  };
  await confirmBoth(1n);
  // The cluster re-shares the token (version 2, both slots sign), then confirms the new shares.
  const reshare = { tokenId: secret.tokenId, version: 1n, sharesRoot: keccak256(toHex("root")), newSharesRoot: keccak256(toHex("root 2")), cluster: cluster.cluster, epoch: 0 };
  const domain = vaultContractDomain(BigInt(devnet.chainId), vault);
  const signatures = await Promise.all([a, b].map(async (key, slot) => ({ slot, signature: await key.signTypedData({ domain, types: reshareTypes, primaryType: "Reshare", message: reshare }) })));
  await reshareSecret(writer, vault, { tokenId: secret.tokenId, version: 1n, newSharesRoot: reshare.newSharesRoot, cluster: cluster.cluster, signatures });
  await confirmBoth(2n);
  // Last, the attester revokes test enclave b (the enclaves page shows a revoked one).
  await revokeEnclave(attester, registry, b.address);

  return { testEnclaves: [a.address, b.address], collaborations, pipelines, grants, vault, collaborationId, pipelineId: pipeline.pipelineId, grantId: grant.grantId, cluster: cluster.cluster, tokenId: secret.tokenId };
}
