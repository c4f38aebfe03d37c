/**
 * The multi-process devnet through its network APIs only: tasks run through
 * the SDK over JSON-RPC and the Kubo RPC API, the network survives a restart
 * on the same data dir, and no process outlives close().
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { casHttpClient, CasHttpError } from "../../src/cas/http-client.ts";
import { CasError } from "../../src/cas/errors.ts";
import { localNetworkManifest } from "../../src/devnet/network-policy.ts";
import { connectToNetwork } from "../../src/devnet/remote-client.ts";
import { startMultiProcessDevnet, type MultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import { TaskVerificationError } from "../../src/sdk/errors.ts";
import { isAlive, waitUntilGone } from "./processes.ts";

const echo = new Uint8Array(await readFile(new URL("../../examples/echo.js", import.meta.url)));
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-devnet-"));
  dirs.push(dir);
  return dir;
}

/** Runs one echo task through the SDK over HTTP (and new heads over WebSocket), with a policy the client builds from the devnet's sim PKI itself. */
async function runEcho(devnet: MultiProcessDevnet): Promise<{ output: string; input: string; signer: string }> {
  const { manifest } = await localNetworkManifest(devnet.simPkiDir);
  const remote = await connectToNetwork({ rpcUrl: devnet.rpcUrl, wsUrl: devnet.wsUrl, ipfsUrl: devnet.ipfsUrl, deployment: { casUrl: devnet.casUrl }, manifest });
  try {
    const input = `hello ${randomBytes(8).toString("hex")}`;
    const result = await remote.client.runTask({ program: echo, input: new TextEncoder().encode(input), timeoutMs: 30_000 });
    return { output: new TextDecoder().decode(result.output), input, signer: result.enclave.signer };
  } finally {
    await remote.close();
  }
}

function pidsOf(devnet: MultiProcessDevnet): number[] {
  return devnet.nodes.flatMap((n) => [n.pid, n.enclavePid]);
}

test("a 2-node devnet runs tasks over HTTP, resumes from its data dir, and leaves no process behind", async () => {
  const dir = await tempDir();
  const first = await startMultiProcessDevnet({ dataDir: dir, nodes: 2 });
  let firstPids: number[];
  let signers: string[];
  try {
    assert.equal(first.nodes.length, 2);
    for (const url of [first.rpcUrl, first.ipfsUrl, first.casUrl]) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(first.wsUrl, first.rpcUrl.replace("http:", "ws:"));
    for (const n of first.nodes) {
      assert.equal(n.simulated, true);
      assert.notEqual(n.pid, process.pid);
      assert.ok(isAlive(n.pid) && isAlive(n.enclavePid), `node ${n.index} and its enclave run in their own processes`);
    }
    for (const n of first.nodes) {
      assert.match(n.httpUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
      const health = (await (await fetch(`${n.httpUrl}/healthz`)).json()) as { enclave: { signer: string } };
      assert.equal(health.enclave.signer, n.signer, "each node serves its own health endpoint");
    }
    signers = first.nodes.map((n) => n.signer).sort();
    assert.notEqual(signers[0], signers[1], "each node has its own enclave identity");

    const run = await runEcho(first);
    assert.equal(run.output, run.input);
    assert.ok(signers.includes(run.signer), "the task was completed by one of the devnet's enclaves");
    firstPids = pidsOf(first);
  } finally {
    await first.close();
  }
  await waitUntilGone(firstPids);

  const second = await startMultiProcessDevnet({ dataDir: dir, nodes: 2 });
  try {
    assert.ok(second.replayedBlocks > 0, "the chain was restored from its journal");
    assert.deepEqual(second.deployment, first.deployment);
    assert.deepEqual(second.nodes.map((n) => n.signer).sort(), signers, "the enclaves unsealed the same identities");
    const run = await runEcho(second);
    assert.equal(run.output, run.input);

    // A client whose policy trusts another simulated root verifies no enclave, so it submits nothing.
    const foreign = await localNetworkManifest(join(await tempDir(), "other-sim-tee"));
    const remote = await connectToNetwork({ rpcUrl: second.rpcUrl, ipfsUrl: second.ipfsUrl, deployment: { file: join(dir, "deployment.json") }, manifest: foreign.manifest });
    try {
      await assert.rejects(remote.client.runTask({ program: echo, input: new Uint8Array(), timeoutMs: 5_000 }), (e) => e instanceof TaskVerificationError && e.code === "NO_VERIFIED_ENCLAVE");
    } finally {
      await remote.close();
    }

    // The attestation service refuses a registration that answers no challenge it issued, and malformed requests.
    const cas = casHttpClient(second.casUrl);
    const signer = second.nodes[0]!.signer as `0x${string}`;
    const bogus = { signer, hpkePublicKey: `0x${"11".repeat(32)}`, provenanceKey: `0x${"33".repeat(91)}`, tlsKey: `0x${"44".repeat(91)}`, operator: signer, evidenceCid: "bafkqaaa", nonce: `0x${"22".repeat(32)}` } as const;
    await assert.rejects(cas.register(bogus), (e) => e instanceof CasError && e.code === "NONCE_UNKNOWN");
    await assert.rejects(cas.register({ ...bogus, signer: "0x12" }), (e) => e instanceof CasHttpError && e.code === "CAS_FAILED" && /signer/.test(e.message));
    await assert.rejects(casHttpClient(second.rpcUrl).deployment(), (e) => e instanceof CasHttpError);

    firstPids = pidsOf(second);
  } finally {
    await second.close();
  }
  await waitUntilGone(firstPids);
});
