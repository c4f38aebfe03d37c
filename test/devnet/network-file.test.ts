/** The network file: what devnet up writes reads back as the same network, and a wrong file is refused by field. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Address } from "viem";
import { simRootDer, loadOrCreateSimPki } from "../../src/attestation/sim/pki.ts";
import { NetworkFileError, readNetworkFile, writeNetworkFile } from "../../src/devnet/network-file.ts";

let dir: string;
let rootPem: string;
const measurement = "ab".repeat(32);
const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address;
const market = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" as Address;
const testToken = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" as Address;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-network-file-"));
  const der = simRootDer(await loadOrCreateSimPki(join(dir, "sim-tee")));
  rootPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----\n`;
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
    policy: { simulatedRootsPem: [rootPem], measurements: [measurement] },
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
    // The policy (policy.json beside it) trusts exactly that simulated root and that measurement.
    assert.equal(n.policy.allowSimulation, true);
    assert.deepEqual(n.policy.measurements, [measurement]);
    assert.equal(n.policy.simulatedRoots.length, 1);
    assert.equal(Buffer.from(n.policy.simulatedRoots[0]!).toString("base64"), rootPem.split("\n")[1]);
  }
});

test("the policy may be inline, and a file without the test mnemonic has no development accounts", async () => {
  const json = await written();
  const inline = { ...json, policy: { allowSimulation: true, simulatedRoots: [rootPem], measurements: [measurement] }, devAccounts: { mnemonic: "other words", path: "m/0", count: 10 } };
  await writeFile(join(dir, "inline.json"), JSON.stringify(inline));
  const n = await readNetworkFile(join(dir, "inline.json"));
  assert.deepEqual(n.policy.measurements, [measurement]);
  assert.equal(n.devAccounts, 0);
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
  await refused({ ...json, policy: "no-such-policy.json" }, /policy .* is unusable/);
  await refused({ ...json, policy: { allowSimulation: "yes" } }, /policy .* is unusable: .*allowSimulation/);
  await writeFile(join(dir, "broken.json"), "{");
  await assert.rejects(readNetworkFile(join(dir, "broken.json")), /not valid JSON/);
  const empty = await mkdtemp(join(tmpdir(), "cloister-no-network-"));
  await assert.rejects(readNetworkFile(empty), /no network file at .*devnet up --dir/);
  await rm(empty, { recursive: true });
  await assert.rejects(readNetworkFile(join(dir, "nowhere")), /no network file or devnet directory/);
});
