/**
 * Whom a requester trusts (issue 10): code that no policy pins gets no key
 * (finding 5), a re-attested enclave's results are accepted by its key and
 * not refused for its evidence CID (finding 8), and evidence binds the
 * operator it was made for (finding 16).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Address } from "viem";
import { encodeEvidence } from "../../src/attestation/evidence-codec.ts";
import { ManifestError, parseManifest, productionManifest, type Manifest } from "../../src/attestation/manifest/index.ts";
import { CasError } from "../../src/cas/errors.ts";
import { AttestationService } from "../../src/cas/service.ts";
import { onChainMeasurement, registerEnclave } from "../../src/chain/actions/register-enclave.ts";
import { createWriterClient, type WriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { CloisterClient } from "../../src/sdk/client.ts";
import { checkReattestedEvidence } from "../../src/sdk/enclaves.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";

let network: EmbeddedNetwork;
let attester: WriterClient;
let cas: AttestationService;
let scratch: string;
const enclaves: EnclaveClient[] = [];
let operatorA: Address;
let operatorB: Address;

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 1 });
  scratch = await mkdtemp(join(tmpdir(), "cloister-trust-"));
  const { chain, deployment, store } = network;
  attester = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.attester });
  cas = new AttestationService({ writer: attester, registry: deployment.registry, store, manifest: network.manifest });
  operatorA = chain.accounts.operators[0]!.address;
  operatorB = chain.accounts.operators[1]!.address;
});
after(async () => {
  for (const e of enclaves) await e.close();
  await network?.close();
  await rm(scratch, { recursive: true, force: true });
});

const program = new TextEncoder().encode("export default function (input) { return input; }");

/** An enclave process of this network: a fresh one, or (given a node's enclave directory) that node's enclave restarted, with its sealed keys. */
async function enclaveAt(dataDir: string): Promise<EnclaveClient> {
  const enclave = await startEnclave({ dataDir, attestation: { provider: "sim", pkiDir: join(network.dataDir, "sim-tee") } });
  enclaves.push(enclave);
  return enclave;
}

/**
 * Evidence the enclave makes for `operator`, answering a fresh challenge of the test's attestation service, published to IPFS
 * in a document that names the enclave's keys; with the P-256 keys a registration names.
 */
async function attestFor(enclave: EnclaveClient, operator: Address) {
  const nonce = cas.challenge();
  const { evidence } = await enclave.attest({ freshness: nonce, operator });
  const { signer, hpkePublicKey, provenanceKey, tlsKey } = enclave.identity;
  return { nonce, provenanceKey, tlsKey, evidenceCid: await network.store.put(encodeEvidence(evidence, { signer, hpkePublicKey, provenanceKey, tlsKey })) };
}

/** Registers the enclave directly (as the attester account, skipping the service's checks) and lists the enclaves a client then trusts. */
async function listedAfterDishonestRegistration(enclave: EnclaveClient, operator: Address, evidenceCid: string) {
  const latest = await attester.getBlock({ blockTag: "latest" });
  await registerEnclave(attester, network.deployment.registry, {
    enclave: enclave.identity.signer,
    operator,
    hpkePublicKey: enclave.identity.hpkePublicKey,
    teeType: "SGX",
    simulated: true,
    measurement: onChainMeasurement(`0x${enclave.identity.measurement}`),
    expiry: latest.timestamp + 3600n,
    evidenceCid,
  });
  const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest: network.manifest });
  return client.listEnclaves();
}

test("a client whose policy pins no code refuses to wrap a key to any enclave, before anything is sent (finding 5)", async () => {
  const unpinned: [string, Manifest][] = [
    ["the production manifest (no released enclave yet)", productionManifest()],
    ["the network manifest whose task role names no package", { ...network.manifest, roles: { task: { packages: [], anyCode: false } } }],
    ["the network manifest accepting any code as a task enclave", { ...network.manifest, roles: { task: { packages: [], anyCode: true } } }],
  ];
  const balance = await network.requester.getBalance({ address: network.requester.account.address });
  for (const [name, manifest] of unpinned) {
    const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest });
    await assert.rejects(
      client.runTask({ program, input: new Uint8Array([1]) }),
      (e) => e instanceof TaskVerificationError && e.code === "POLICY_PINS_NO_CODE" && /measurements/.test(e.message),
      name,
    );
    const listing = await client.listEnclaves();
    assert.deepEqual(listing.verified, [], `${name}: no enclave is verified`);
    assert.ok(listing.rejected.every((r) => /no code pinned/.test(r.reason)), `${name}: ${JSON.stringify(listing.rejected)}`);
  }
  assert.equal(await network.requester.getBalance({ address: network.requester.account.address }), balance, "no transaction was sent");
});

test("evidence an enclave made for operator A is refused when operator B registers it (finding 16)", async () => {
  const enclave = await enclaveAt(join(scratch, "stranger"));
  const forA = await attestFor(enclave, operatorA);
  const { signer, hpkePublicKey } = enclave.identity;
  await assert.rejects(
    cas.register({ signer, hpkePublicKey, operator: operatorB, ...forA }),
    (e) => e instanceof CasError && e.code === "EVIDENCE_REFUSED" && e.message.includes(operatorB) && /operator/.test(e.message),
  );
  const registered = await cas.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestFor(enclave, operatorA)) });
  assert.equal(registered.signer, signer);
});

test("a requester refuses an enclave registered for another operator than its evidence binds (finding 16)", async () => {
  const enclave = await enclaveAt(join(scratch, "stranger"));
  const { evidenceCid } = await attestFor(enclave, operatorA);
  // A registration no honest attestation service makes: it skipped the operator check.
  const listing = await listedAfterDishonestRegistration(enclave, operatorB, evidenceCid);
  assert.ok(!listing.verified.some((v) => v.signer === enclave.identity.signer), "the enclave is not trusted");
  const rejection = listing.rejected.find((r) => r.signer === enclave.identity.signer);
  assert.match(rejection?.reason ?? "", /operator/);
  assert.ok(listing.verified.some((v) => v.signer === network.nodes[0]!.signer), "the network's node still is");
});

test("a result is accepted when the enclave re-attested (same keys, new evidence CID) between listing and completion (finding 8)", async () => {
  const node = network.nodes[0]!;
  const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest: network.manifest });
  const before = (await client.listEnclaves()).verified.find((v) => v.signer === node.signer)!;
  // The node's enclave restarts with its sealed keys and attests again: a new evidence CID for the same key.
  const restarted = await enclaveAt(join(network.dataDir, "nodes", "0", "enclave"));
  assert.equal(restarted.identity.signer, node.signer);
  const again = await attestFor(restarted, operatorA);
  await cas.register({ signer: restarted.identity.signer, hpkePublicKey: restarted.identity.hpkePublicKey, operator: operatorA, ...again });
  assert.notEqual(again.evidenceCid, before.evidenceCid);

  // The client now knows the newer registration; the node's statements still name the one it made at start.
  const result = await client.runTask({ program, input: new TextEncoder().encode("after re-attestation") });
  assert.equal(new TextDecoder().decode(result.output), "after re-attestation");
  assert.equal(result.enclave.evidenceCid, again.evidenceCid);
  assert.equal(result.provenance.predicate.enclave.evidenceCid, before.evidenceCid);
  assert.ok(result.checks.some((c) => c.includes(before.evidenceCid) && /registration of the same enclave key/.test(c)), result.checks.join("\n"));
});

test("evidence a statement names must be a registration of the same enclave key (finding 8)", async () => {
  const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest: network.manifest });
  const node = (await client.listEnclaves()).verified.find((v) => v.signer === network.nodes[0]!.signer)!;
  const stranger = await enclaveAt(join(scratch, "other"));
  const foreign = await attestFor(stranger, operatorA);
  await cas.register({ signer: stranger.identity.signer, hpkePublicKey: stranger.identity.hpkePublicKey, operator: operatorA, ...foreign });
  const params = { reader: network.requester, registry: network.deployment.registry, fromBlock: network.deployment.deployBlock, store: network.store, policy: network.policy };

  const refused = await checkReattestedEvidence(params, node, foreign.evidenceCid);
  assert.ok("reason" in refused && refused.reason.includes(node.signer) && /not a registration/.test(refused.reason), JSON.stringify(refused));
  const unknown = await checkReattestedEvidence(params, node, "bafkreibi7wwob5ifivsztx2aq57r3ve4gifacxlixus3ddnxs3nq7wnxha");
  assert.ok("reason" in unknown && /not a registration/.test(unknown.reason));
  const own = await checkReattestedEvidence(params, node, node.evidenceCid);
  assert.ok(!("reason" in own), JSON.stringify(own));
  const strict = await checkReattestedEvidence({ ...params, policy: { ...network.policy, measurements: ["00".repeat(32)] } }, node, node.evidenceCid);
  assert.ok("reason" in strict && /not allowed/.test(strict.reason), "the evidence is checked under the requester's policy");
});

test("a client runs tasks under its manifest's task limits: a task asking for more is refused before anything is sent", async () => {
  const tight = parseManifest({ ...network.manifest, limits: { ...network.manifest.limits, task: { ...network.manifest.limits.task, max: { memoryMb: 64, timeMs: 60_000, outputBytes: 1 << 20 } } } });
  const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest: tight });
  const balance = await network.requester.getBalance({ address: network.requester.account.address });
  await assert.rejects(
    client.runTask({ program, input: new Uint8Array([1]), limits: { memoryMb: 128 } }),
    (e) => e instanceof ManifestError && e.code === "LIMITS_EXCEEDED" && /memoryMb 128 > 64/.test(e.message),
  );
  assert.equal(await network.requester.getBalance({ address: network.requester.account.address }), balance, "no transaction was sent");
});

test("the attestation service takes the registration lifetime, the evidence size and the accepted code from its manifest", async () => {
  const enclave = await enclaveAt(join(scratch, "lifetime"));
  const { signer, hpkePublicKey } = enclave.identity;
  const withService = (manifest: Manifest) => new AttestationService({ writer: attester, registry: network.deployment.registry, store: network.store, manifest });
  const attestTo = async (service: AttestationService) => {
    const nonce = service.challenge();
    const { evidence } = await enclave.attest({ freshness: nonce, operator: operatorA });
    const { provenanceKey, tlsKey } = enclave.identity;
    return { nonce, provenanceKey, tlsKey, evidenceCid: await network.store.put(encodeEvidence(evidence, { signer, hpkePublicKey, provenanceKey, tlsKey })) };
  };

  const shortLived = withService(parseManifest({ ...network.manifest, registration: { lifetimeSeconds: 600 } }));
  const registered = await shortLived.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestTo(shortLived)) });
  const latest = await attester.getBlock({ blockTag: "latest" });
  assert.ok(registered.expiry - latest.timestamp <= 600n && registered.expiry - latest.timestamp > 590n, `expiry ${registered.expiry} at block time ${latest.timestamp}`);

  const small = withService(parseManifest({ ...network.manifest, limits: { ...network.manifest.limits, evidenceBytes: 64 } }));
  await assert.rejects(small.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestTo(small)) }), (e) => e instanceof CasError && e.code === "EVIDENCE_UNAVAILABLE");

  // Only a vault role pins this enclave's code: the service accepts it as a vault enclave, and refuses it once no role names it.
  const packages = network.manifest.packages;
  const asVault = withService(parseManifest({ ...network.manifest, roles: { task: { packages: [] }, vault: { packages: Object.keys(packages) } } }));
  await asVault.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestTo(asVault)) });
  const none = withService(parseManifest({ ...network.manifest, roles: { task: { packages: [] } } }));
  await assert.rejects(none.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestTo(none)) }), (e) => e instanceof CasError && e.code === "EVIDENCE_REFUSED" && /no code pinned/.test(e.message));
});

test("a client puts an encrypted input inline in the envelope only up to its manifest's inlineInputBytes", async () => {
  const inputs = new Map<string, string[]>();
  for (const [name, inlineInputBytes] of [["default", undefined], ["none", 0]] as const) {
    const task = { ...network.manifest.limits.task, ...(inlineInputBytes === undefined ? {} : { inlineInputBytes }) };
    const manifest = parseManifest({ ...network.manifest, limits: { ...network.manifest.limits, task } });
    const client = new CloisterClient({ writer: network.requester, deployment: network.deployment, store: network.store, manifest });
    const result = await client.runTask({
      program,
      input: new TextEncoder().encode(name),
      onProgress: (p) => {
        if (p.step === "submitted") inputs.set(name, Object.keys(p.task.envelope.input));
      },
    });
    assert.equal(new TextDecoder().decode(result.output), name);
  }
  assert.ok(inputs.get("default")?.includes("inline"), JSON.stringify([...inputs]));
  assert.ok(inputs.get("none")?.includes("cid"), JSON.stringify([...inputs]));
});

test("the attestation service registers an enclave only with the P-256 keys its evidence commits to, named by its evidence document", async () => {
  const enclave = await enclaveAt(join(scratch, "p256-keys"));
  const { signer, hpkePublicKey, provenanceKey, tlsKey } = enclave.identity;
  const refused = (pattern: RegExp) => (e: unknown) => e instanceof CasError && e.code === "EVIDENCE_REFUSED" && pattern.test(e.message);

  // A document without the keys (as published before report_data committed to the P-256 keys).
  let nonce = cas.challenge();
  let { evidence } = await enclave.attest({ freshness: nonce, operator: operatorA });
  const bare = await network.store.put(encodeEvidence(evidence));
  await assert.rejects(cas.register({ signer, hpkePublicKey, provenanceKey, tlsKey, operator: operatorA, evidenceCid: bare, nonce }), refused(/does not name the keys/));

  // A host that names its own TLS key, in the request and the document alike: report_data does not commit to it.
  nonce = cas.challenge();
  ({ evidence } = await enclave.attest({ freshness: nonce, operator: operatorA }));
  const hostTlsKey = (await enclaveAt(join(scratch, "p256-other"))).identity.tlsKey;
  const swapped = await network.store.put(encodeEvidence(evidence, { signer, hpkePublicKey, provenanceKey, tlsKey: hostTlsKey }));
  await assert.rejects(
    cas.register({ signer, hpkePublicKey, provenanceKey, tlsKey: hostTlsKey, operator: operatorA, evidenceCid: swapped, nonce }),
    refused(/report_data does not commit/),
  );

  // The enclave's own keys register.
  const registered = await cas.register({ signer, hpkePublicKey, operator: operatorA, ...(await attestFor(enclave, operatorA)) });
  assert.equal(registered.signer, signer);
});

test("a requester refuses an enclave whose registered evidence document names P-256 keys its report_data does not commit to", async () => {
  const enclave = await enclaveAt(join(scratch, "p256-listing"));
  const { signer, hpkePublicKey, provenanceKey } = enclave.identity;
  const { evidence } = await enclave.attest({ operator: operatorA });
  const hostKey = (await enclaveAt(join(scratch, "p256-listing-other"))).identity.tlsKey;
  const evidenceCid = await network.store.put(encodeEvidence(evidence, { signer, hpkePublicKey, provenanceKey, tlsKey: hostKey }));
  // A registration no honest attestation service makes: it skipped the key check.
  const listing = await listedAfterDishonestRegistration(enclave, operatorA, evidenceCid);
  assert.ok(!listing.verified.some((v) => v.signer === signer), "the enclave is not trusted");
  assert.match(listing.rejected.find((r) => r.signer === signer)?.reason ?? "", /provenance and TLS keys/);
  const node = listing.verified.find((v) => v.signer === network.nodes[0]!.signer);
  assert.ok(node && /^0x3059/.test(node.provenanceKey) && /^0x3059/.test(node.tlsKey), "a verified enclave comes with its P-256 keys (SPKI DER)");
});
