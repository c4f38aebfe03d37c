/** The network file: what devnet up writes reads back as the same network (its manifest by path and digest), an older devnet's file with a policy file still loads, and a wrong file is refused by field. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Address } from "viem";
import { simRootDer, loadOrCreateSimPki } from "../../src/attestation/sim/pki.ts";
import { manifestDigest, parseManifest, policyForRole, type Manifest } from "../../src/attestation/manifest/index.ts";
import { NetworkFileError, readNetworkFile, writeNetworkFile } from "../../src/devnet/network-file.ts";

let dir: string;
let rootPem: string;
let manifest: Manifest;
const measurement = "ab".repeat(32);
const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address;
const market = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" as Address;
const testToken = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" as Address;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-network-file-"));
  const der = simRootDer(await loadOrCreateSimPki(join(dir, "sim-tee")));
  rootPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----\n`;
  manifest = parseManifest({ version: 1, attestation: { allowSimulation: true, simulatedRoots: [rootPem] }, packages: { enclave: { measurements: [measurement] } }, roles: { task: { packages: ["enclave"] } } });
});
after(() => rm(dir, { recursive: true, force: true }));

async function written(): Promise<Record<string, unknown>> {
  await writeNetworkFile(dir, {
    chainId: 31337,
    rpcUrl: "http://127.0.0.1:8545",
    wsUrl: "ws://127.0.0.1:8545",
    ipfsUrl: "http://127.0.0.1:8546",
    casUrl: "http://127.0.0.1:8547",
    deployment: { chainId: 31337, registry, market, deployBlock: 4n },
    testToken,
    manifest,
  });
  return JSON.parse(await readFile(join(dir, "network.json"), "utf8")) as Record<string, unknown>;
}

async function refused(json: unknown, pattern: RegExp): Promise<void> {
  const path = join(dir, "other.json");
  await writeFile(path, JSON.stringify(json));
  await assert.rejects(readNetworkFile(path), (e: unknown) => e instanceof NetworkFileError && pattern.test(e.message));
}

test("what devnet up writes reads back, from the directory or the file", async () => {
  await written();
  for (const where of [dir, join(dir, "network.json")]) {
    const n = await readNetworkFile(where);
    assert.equal(n.path, join(dir, "network.json"));
    assert.deepEqual(n.endpoints, { rpc: "http://127.0.0.1:8545", ws: "ws://127.0.0.1:8545", ipfs: "http://127.0.0.1:8546", cas: "http://127.0.0.1:8547" });
    assert.deepEqual(n.deployment, { chainId: 31337, registry, market, deployBlock: 4n });
    assert.equal(n.testToken, testToken);
    assert.equal(n.devAccounts, 10);
    // The manifest (manifest.json beside it) is the one written; its task role trusts exactly that simulated root and that measurement.
    assert.deepEqual(n.manifest, manifest);
    assert.equal(n.manifestDigest, manifestDigest(manifest));
    assert.equal(n.convertedFromPolicyFile, false);
    const policy = policyForRole(n.manifest, "task");
    assert.equal(policy.allowSimulation, true);
    assert.deepEqual(policy.measurements, [measurement]);
    assert.equal(Buffer.from(policy.simulatedRoots[0]!).toString("base64"), rootPem.split("\n")[1]);
  }
  const json = JSON.parse(await readFile(join(dir, "network.json"), "utf8")) as Record<string, unknown>;
  assert.equal(json.manifest, "manifest.json");
  assert.equal(json.manifestDigest, manifestDigest(manifest));
  assert.equal(json.policy, undefined);
});

test("a manifest changed after the network file was written is refused by its digest", async () => {
  await written();
  const path = join(dir, "manifest.json");
  const changed = JSON.parse(await readFile(path, "utf8")) as { attestation: { allowDebug: boolean } };
  changed.attestation.allowDebug = true;
  await writeFile(path, JSON.stringify(changed));
  await assert.rejects(readNetworkFile(dir), (e: unknown) => e instanceof NetworkFileError && /has digest 0x[0-9a-f]{64}, but the network file names 0x[0-9a-f]{64}: the manifest was changed/.test(e.message));
  await written();
});

test("an older devnet's network file, naming its policy.json, still loads as a manifest", async () => {
  const json = await written();
  await writeFile(join(dir, "policy.json"), JSON.stringify({ allowSimulation: true, simulatedRoots: [rootPem], measurements: [measurement] }));
  const { manifest: _m, manifestDigest: _d, ...rest } = json;
  await writeFile(join(dir, "old.json"), JSON.stringify({ ...rest, policy: "policy.json" }));
  const n = await readNetworkFile(join(dir, "old.json"));
  assert.equal(n.convertedFromPolicyFile, true);
  assert.deepEqual(policyForRole(n.manifest, "task").measurements, [measurement]);
  assert.equal(n.manifest.attestation.allowSimulation, true);
  assert.equal(n.manifestDigest, manifestDigest(n.manifest));
  await written();
  await assert.rejects(readFile(join(dir, "policy.json")), { code: "ENOENT" }, "a devnet writing its manifest removes the old policy.json");
});

test("the manifest (or an old policy) may be inline, and a file without the test mnemonic has no development accounts", async () => {
  const json = await written();
  const inline = { ...json, manifest, devAccounts: { mnemonic: "other words", path: "m/0", count: 10 } };
  await writeFile(join(dir, "inline.json"), JSON.stringify(inline));
  const n = await readNetworkFile(join(dir, "inline.json"));
  assert.deepEqual(n.manifest, manifest);
  assert.equal(n.devAccounts, 0);
  const { manifest: _m, manifestDigest: _d, ...rest } = json;
  await writeFile(join(dir, "inline-policy.json"), JSON.stringify({ ...rest, policy: { allowSimulation: true, simulatedRoots: [rootPem], measurements: [measurement] } }));
  assert.deepEqual(policyForRole((await readNetworkFile(join(dir, "inline-policy.json"))).manifest, "task").measurements, [measurement]);
  const { devAccounts: _none, ...remote } = json;
  await writeFile(join(dir, "remote.json"), JSON.stringify(remote));
  assert.equal((await readNetworkFile(join(dir, "remote.json"))).devAccounts, 0);
});

test("a wrong network file is refused, naming the field", async () => {
  const json = await written();
  await refused({ ...json, deployment: { ...(json.deployment as object), market: "0x1234" } }, /network\.deployment\.market: is not a 20-byte hex address/);
  await refused({ ...json, endpoints: { ...(json.endpoints as object), rpc: "127.0.0.1:8545" } }, /network\.endpoints\.rpc: is not an http\(s\) URL/);
  await refused({ ...json, surprise: true }, /surprise/);
  await refused({ ...json, version: 2 }, /network\.version/);
  const { manifest: _m, manifestDigest: _d, ...old } = json;
  await refused({ ...json, manifest: "no-such-manifest.json" }, /policy manifest .* is unusable: cannot read/);
  await refused({ ...json, manifest: { version: 1, roles: { task: { packages: ["nope"] } } } }, /policy manifest .* is unusable: .*manifest\.roles\.task\.packages\[0\]/);
  await refused({ ...json, policy: "policy.json" }, /network\.manifest: a network file names its policy manifest .* exactly one of them/);
  await refused(old, /network\.manifest: a network file names its policy manifest/);
  await refused({ ...old, policy: "no-such-policy.json" }, /policy manifest .* is unusable/);
  await refused({ ...old, policy: { allowSimulation: "yes" } }, /policy manifest .* is unusable: .*allowSimulation/);
  await refused({ ...json, manifestDigest: "0x12" }, /network\.manifestDigest/);
  await writeFile(join(dir, "broken.json"), "{");
  await assert.rejects(readNetworkFile(join(dir, "broken.json")), /not valid JSON/);
  const empty = await mkdtemp(join(tmpdir(), "cloister-no-network-"));
  await assert.rejects(readNetworkFile(empty), /no network file at .*devnet up --dir/);
  await rm(empty, { recursive: true });
  await assert.rejects(readNetworkFile(join(dir, "nowhere")), /no network file or devnet directory/);
});
