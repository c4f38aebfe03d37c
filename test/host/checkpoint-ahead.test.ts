/**
 * A node whose saved position is ahead of the chain it is pointed at (a checkpoint from another chain, or a
 * chain journal that lost its tail while nodes/ survived) refuses to start, naming the file, its block, the
 * chain's head and what to do, before it registers or posts an offer; a head seen going backwards while it
 * runs is reported, not silently waited out.
 */
import assert from "node:assert/strict";
import { access, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { zeroAddress } from "viem";
import { AttestationService } from "../../src/cas/service.ts";
import { readEnclave } from "../../src/chain/actions/read-enclave.ts";
import { readOffer } from "../../src/chain/actions/offers.ts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import { startEnclave } from "../../src/enclave/client.ts";
import { ChainFollower } from "../../src/chain/follower.ts";
import { ChainBehindError } from "../../src/chain/follower-checkpoint.ts";
import { NodeDaemon } from "../../src/host/node-daemon.ts";
import { watchSubmittedTasks } from "../../src/host/task-watcher.ts";

let network: EmbeddedNetwork;

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 0 });
});
after(async () => {
  await network?.close();
});

async function startNode(nodeDir: string): Promise<NodeDaemon> {
  const { chain, deployment, store, manifest, dataDir } = network;
  const writer = (account: typeof chain.accounts.deployer) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });
  const cas = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store, manifest });
  const enclave = await startEnclave({ dataDir: join(nodeDir, "enclave"), attestation: { provider: "sim", pkiDir: join(dataDir, "sim-tee") } });
  const daemon = new NodeDaemon({ writer: writer(chain.accounts.operators[1]!), deployment, store, enclave, attestationService: cas, dataDir: nodeDir, pollIntervalMs: 25 });
  try {
    await daemon.start();
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return daemon;
}

/** The node's checkpoint, and the two files of earlier versions it migrates from. */
const aheadFiles = {
  "chain-checkpoint.json": { version: 1, positions: { tasks: { block: "1000000" } } },
  "checkpoint.json": { block: "1000000" },
  "reopen-keeper.json": { version: 2, block: "1000000", attempts: [] },
};

for (const [file, content] of Object.entries(aheadFiles)) {
  test(`a ${file} ahead of the chain: the node refuses to start, says why and what to do, and registers nothing`, async () => {
    const nodeDir = join(network.dataDir, `ahead-${file}`);
    await mkdir(nodeDir, { recursive: true });
    await writeFile(join(nodeDir, file), JSON.stringify(content));
    // An older version's file is migrated into the node's checkpoint first, which then names the block.
    const path = join(nodeDir, "chain-checkpoint.json");
    const head = await network.requester.getBlockNumber({ cacheTime: 0 });
    const error = await startNode(nodeDir).then(
      () => assert.fail("the node started"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ChainBehindError, `a ChainBehindError, got ${String(error)}`);
    assert.equal(error.code, "CHAIN_BEHIND_SAVED_POSITION");
    assert.equal(error.path, path);
    assert.equal(error.savedBlock, 1_000_000n);
    assert.ok(error.head >= head && error.head < 1_000_000n);
    assert.match(error.message, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*block 1000000.*head is block \\d+`));
    assert.match(error.message, /delete .* to rescan from the deployment block/);
    assert.match(error.message, /--rpc/);
    if (file !== "chain-checkpoint.json") await assert.rejects(access(join(nodeDir, file)), "the older file was deleted once migrated");
    await rm(nodeDir, { recursive: true, force: true });
  });
}

test("a node with a checkpoint ahead of the chain registers no enclave and posts no offer", async () => {
  const nodeDir = join(network.dataDir, "ahead-no-offer");
  await mkdir(nodeDir, { recursive: true });
  await writeFile(join(nodeDir, "checkpoint.json"), JSON.stringify({ block: "1000000" }));
  await assert.rejects(startNode(nodeDir), ChainBehindError);
  const { dataDir } = network;
  // The same sealed identity, started again to learn its signer: it was never registered.
  const enclave = await startEnclave({ dataDir: join(nodeDir, "enclave"), attestation: { provider: "sim", pkiDir: join(dataDir, "sim-tee") } });
  const signer = enclave.identity.signer;
  await enclave.close();
  const record = await readEnclave(network.requester, network.deployment.registry, signer);
  assert.equal(record.operator, zeroAddress, "the enclave was not registered");
  assert.equal(await readOffer(network.requester, network.deployment.market, signer, zeroAddress), undefined, "no offer was posted");
});

test("a head seen going backwards under a running watcher is reported as ChainBehindError each crawl", async () => {
  const head = await network.requester.getBlockNumber({ cacheTime: 0 });
  const errors: unknown[] = [];
  const follower = new ChainFollower({ reader: network.requester, pollIntervalMs: 10, maxBackoffMs: 20, onError: (e) => errors.push(e) });
  // As if the watcher had crawled to head + 5 and the endpoint now answers with an older chain.
  watchSubmittedTasks(follower, { market: network.deployment.market, fromBlock: head + 6n, handle: async () => {} });
  follower.start();
  const deadline = Date.now() + 5_000;
  while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await follower.stop();
  assert.ok(errors.length >= 2, "reported on every crawl");
  const error = errors[0];
  assert.ok(error instanceof ChainBehindError, String(error));
  assert.equal(error.savedBlock, head + 5n);
  assert.match(error.message, /went backwards|behind/);
});
