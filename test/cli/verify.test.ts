/** `cloister verify`: a task's provenance checks out, and each alteration is caught by the check it concerns. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { productionPolicy } from "../../src/attestation/policy.ts";
import { startEmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { localNetworkManifest } from "../../src/devnet/network-policy.ts";
import { verifyProvenanceRecord } from "../../src/sdk/verify-provenance.ts";
import { toHex } from "../../src/crypto/bytes.ts";
import { generateP256 } from "../../src/crypto/p256.ts";
import { signEnvelope, unverifiedStatement } from "../../src/protocol/provenance.ts";
import { openHeliaStore, type HeliaStore } from "../../src/storage/helia-store.ts";

const run = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
let dir: string;
let taskId: bigint;
let store: HeliaStore;
let blobs: { envelope: Uint8Array; output: Uint8Array; evidenceCid: string; operator: `0x${string}` };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-verify-"));
  const network = await startEmbeddedNetwork({ dataDir: dir });
  try {
    const result = await network.client.runTask({ program: new TextEncoder().encode("export default (x) => x;"), input: new TextEncoder().encode("provenance") });
    taskId = result.taskId;
    blobs = { envelope: await network.store.get(result.provenanceCid), output: await network.store.get(result.outputCid), evidenceCid: result.enclave.evidenceCid, operator: result.enclave.operator };
  } finally {
    await network.close();
  }
  store = await openHeliaStore(join(dir, "ipfs"));
});
after(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

test("verify <task-id> --data-dir checks signature, attestation, output and anchor", async () => {
  await store.close();
  try {
    const { stdout } = await run(process.execPath, [cli, "verify", taskId.toString(), "--data-dir", dir, "--json"]);
    const out = JSON.parse(stdout) as { ok: boolean; job: { kind: string; id: string }; checks: { name: string; ok: boolean }[]; enclave: { simulated: boolean } };
    assert.equal(out.ok, true);
    assert.deepEqual(out.job, { kind: "task", id: taskId.toString() });
    assert.deepEqual(out.checks.map((c) => [c.name, c.ok]), [["signature", true], ["attestation", true], ["output", true], ["anchor", true]]);
    assert.equal(out.enclave.simulated, true);
  } finally {
    store = await openHeliaStore(join(dir, "ipfs"));
  }
});

test("each alteration fails the check it concerns", async () => {
  const { policy } = await localNetworkManifest(join(dir, "sim-tee"));
  const evidence = await store.get(blobs.evidenceCid);
  const good = await verifyProvenanceRecord({ envelope: blobs.envelope, policy, evidence, output: blobs.output, operator: blobs.operator });
  assert.equal(good.ok, true, JSON.stringify(good.checks));

  // The evidence binds the operator it was made for (issue 10, finding 16): unknown or another operator fails.
  const noOperator = await verifyProvenanceRecord({ envelope: blobs.envelope, policy, evidence, output: blobs.output });
  assert.match(noOperator.checks.find((c) => c.name === "attestation")!.detail, /operator .*unknown/);
  const otherOperator = await verifyProvenanceRecord({ envelope: blobs.envelope, policy, evidence, output: blobs.output, operator: `0x${"77".repeat(20)}` });
  assert.match(otherOperator.checks.find((c) => c.name === "attestation")!.detail, /does not commit to .*operator 0x7777/);

  const doc = JSON.parse(new TextDecoder().decode(blobs.envelope)) as { payload: string };
  const statement = JSON.parse(Buffer.from(doc.payload, "base64").toString()) as { predicate: { finishedOn: string } };
  statement.predicate.finishedOn = "2001-01-01T00:00:00.000Z";
  const altered = new TextEncoder().encode(JSON.stringify({ ...doc, payload: Buffer.from(JSON.stringify(statement)).toString("base64") }));
  const forged = await verifyProvenanceRecord({ envelope: altered, policy, evidence, output: blobs.output });
  assert.deepEqual(forged.checks.map((c) => [c.name, c.ok]), [["signature", false]]);

  const strict = await verifyProvenanceRecord({ envelope: blobs.envelope, policy: productionPolicy(), evidence, output: blobs.output });
  assert.equal(strict.ok, false);
  assert.match(strict.checks.find((c) => c.name === "attestation")!.detail, /not authentic|simulat/i);

  const output = blobs.output.slice();
  output[0]! ^= 1;
  const swapped = await verifyProvenanceRecord({ envelope: blobs.envelope, policy, evidence, output });
  assert.equal(swapped.checks.find((c) => c.name === "output")!.ok, false);

  const missing = await verifyProvenanceRecord({ envelope: blobs.envelope, policy });
  assert.equal(missing.checks.find((c) => c.name === "attestation")!.ok, false);

  // A host re-signs the record with a P-256 key of its own and names it: the signature checks, the attestation does not.
  const own = generateP256();
  const genuine = unverifiedStatement(blobs.envelope);
  const claimed = { ...genuine, predicate: { ...genuine.predicate, enclave: { ...genuine.predicate.enclave, provenanceKey: toHex(own.spki) } } };
  const resigned = signEnvelope(claimed, own);
  const hostSigned = await verifyProvenanceRecord({ envelope: resigned, policy, evidence, output: blobs.output, operator: blobs.operator });
  assert.deepEqual(hostSigned.checks.map((c) => [c.name, c.ok]), [["signature", true], ["attestation", false], ["output", true]]);
  assert.match(hostSigned.checks[1]!.detail, /does not name the keys the record names/);

  // ... and an evidence document rewritten to name that key is refused by the quote's report_data.
  const evidenceDoc = JSON.parse(new TextDecoder().decode(evidence)) as { enclaveKeys: { provenanceKey: string } };
  evidenceDoc.enclaveKeys.provenanceKey = toHex(own.spki);
  const rewritten = await verifyProvenanceRecord({ envelope: resigned, policy, evidence: new TextEncoder().encode(JSON.stringify(evidenceDoc)), output: blobs.output, operator: blobs.operator });
  assert.equal(rewritten.ok, false);
  assert.match(rewritten.checks[1]!.detail, /report_data does not commit/);
});

test("verify needs a data dir for a task id and exits 2 without one", async () => {
  await assert.rejects(run(process.execPath, [cli, "verify", "123"]), (e: { code: number; stderr: string }) => e.code === 2 && /--data-dir/.test(e.stderr));
});
