/**
 * handleTask's speculative run (src/host/task-handler.ts), on the in-process chain and contracts with two
 * real enclave processes: an idle node starts its enclave on a task before its accept is mined and completes
 * it; a speculative run whose accept loses the race to another candidate is discarded (nothing completed, the
 * task skipped, no unhandled rejection); a node with a run in flight accepts before it runs.
 *
 * The handler gets the node's real enclave and market batches, each behind a thin wrapper that only records
 * the order of calls (and, where a test needs it, holds a call back): the trace below.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { parseEther, zeroAddress } from "viem";
import { encodeEvidence } from "../../src/attestation/evidence-codec.ts";
import { AttestationService } from "../../src/cas/service.ts";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { postOffer } from "../../src/chain/actions/offers.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { createWriterClient, type WriterClient } from "../../src/chain/clients.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import type { RunJobParams } from "../../src/enclave/call-gate.ts";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { nodeMarketBatches, type NodeMarketBatches } from "../../src/host/market-batches.ts";
import { handleTask, type TaskHandlerContext } from "../../src/host/task-handler.ts";
import type { SubmittedTask } from "../../src/host/task-watcher.ts";
import { prepareTask, publishTask, submitPublished } from "../../src/sdk/submit.ts";
import { taskEvents } from "../faults/helpers.ts";

interface Node {
  enclave: EnclaveClient;
  operator: WriterClient;
  evidenceCid: string;
}

let network: EmbeddedNetwork;
/** Node A runs the handler under test; node B is the rival candidate. */
let nodeA: Node;
let nodeB: Node;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(async () => {
  network = await startEmbeddedNetwork({ nodes: 0 });
  const { chain, deployment, store, manifest, dataDir } = network;
  const writer = (account: typeof chain.accounts.deployer) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });
  const cas = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store, manifest });
  // What NodeDaemon.start does for its enclave: attest, register through the attestation service, post an offer.
  const startNode = async (i: number): Promise<Node> => {
    const operator = writer(chain.accounts.operators[i]!);
    const enclave = await startEnclave({ dataDir: join(dataDir, "speculation", String(i)), attestation: { provider: "sim", pkiDir: join(dataDir, "sim-tee") } });
    const nonce = await cas.challenge();
    const { evidence } = await enclave.attest({ freshness: nonce, operator: operator.account.address });
    const { signer, hpkePublicKey, provenanceKey, tlsKey } = enclave.identity;
    const evidenceCid = await store.put(encodeEvidence(evidence, { signer, hpkePublicKey, provenanceKey, tlsKey }));
    await cas.register({ signer, hpkePublicKey, provenanceKey, tlsKey, operator: operator.account.address, evidenceCid, nonce });
    await postOffer(operator, deployment.market, { enclave: signer, token: zeroAddress, price: 1n, cpuMillis: 4_000, memoryMb: 4_096, maxDuration: 3_600 });
    return { enclave, operator, evidenceCid };
  };
  nodeA = await startNode(0);
  nodeB = await startNode(1);
});
after(async () => {
  for (const node of [nodeA, nodeB]) await node?.enclave.close();
  await network?.close();
});
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

/** A task both enclaves are candidates for, submitted by the network's requester, as the node's watcher sees it. */
async function submitTask(input: string): Promise<SubmittedTask> {
  const { requester, deployment, store, client } = network;
  const listing = await client.listEnclaves();
  const signers = [nodeA, nodeB].map((n) => n.enclave.identity.signer.toLowerCase());
  const candidates = listing.verified.filter((e) => signers.includes(e.signer.toLowerCase()));
  assert.equal(candidates.length, 2, `both enclaves must verify; rejected: ${JSON.stringify(listing.rejected)}`);
  const ctx = { writer: requester, market: deployment.market, chainId: BigInt(deployment.chainId), store };
  const program = new TextEncoder().encode("export default function (input) { return input; }");
  const prepared = await prepareTask(ctx, { program, input: new TextEncoder().encode(input), candidates });
  const submitted = await submitPublished(ctx, await publishTask(ctx, prepared, { maxPrice: parseEther("0.01") }));
  return { taskId: submitted.taskId, requester: submitted.spec.requester, reward: submitted.spec.maxPrice, spec: submitted.spec, blockNumber: submitted.submitBlock };
}

function taskIdOf(params: RunJobParams): bigint {
  assert.equal(params.kind, "task");
  return (params.params as { binding: { taskId: bigint } }).binding.taskId;
}

/** Resolves true once `found` holds, or false after `timeoutMs`. */
async function eventually(found: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (found()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return found();
}

interface Hooks {
  /** Runs before the node's accept of the task is sent (the accept is on its way meanwhile). */
  beforeAccept?: (taskId: bigint) => Promise<void>;
  /** Holds the enclave's run of the task until it resolves. */
  holdRun?: (taskId: bigint) => Promise<void> | undefined;
}

/**
 * Node A's handler context, on its real enclave and market batches. The trace records, in order, each
 * runJob of a task (with the task's status on chain as the enclave was called), each accept as it is mined
 * or fails, and each completion sent.
 */
function nodeContext(hooks: Hooks = {}) {
  const { enclave, operator, evidenceCid } = nodeA;
  const { deployment } = network;
  const trace: string[] = [];
  const events: HostEvent[] = [];
  const real = nodeMarketBatches({ writer: operator, market: deployment.market, enclave: enclave.identity.signer });
  const batches: NodeMarketBatches = {
    readTask: real.readTask,
    accept: async (task) => {
      await hooks.beforeAccept?.(task.taskId);
      try {
        const accepted = await real.accept(task);
        trace.push(`accepted ${task.taskId} in block ${accepted.receipt.blockNumber}`);
        return accepted;
      } catch (error) {
        trace.push(`accept failed ${task.taskId}`);
        throw error;
      }
    },
    complete: (params) => {
      trace.push(`complete ${params.taskId}`);
      return real.complete(params);
    },
  };
  const recorded: EnclaveClient = {
    get identity() {
      return enclave.identity;
    },
    pid: enclave.pid,
    exited: enclave.exited,
    init: () => enclave.init(),
    attest: (params) => enclave.attest(params),
    refuseJob: (params) => enclave.refuseJob(params),
    releaseCollabResult: (params) => enclave.releaseCollabResult(params),
    close: () => enclave.close(),
    runJob: async (params, opts) => {
      const taskId = taskIdOf(params);
      const { status } = await readTask(operator, deployment.market, taskId);
      trace.push(`runJob ${taskId} while ${status}`);
      await hooks.holdRun?.(taskId);
      return enclave.runJob(params, opts);
    },
  };
  const ctx: TaskHandlerContext = {
    writer: operator,
    market: deployment.market,
    chainId: BigInt(deployment.chainId),
    batches,
    store: network.store,
    enclave: recorded,
    evidenceCid,
    log: { emit: (event) => events.push(event) },
    // Both candidates try at once (no wait for rank): the order of the enclave's run and the accept is the handler's alone.
    acceptSlotMs: 0,
  };
  const at = (prefix: string) => trace.findIndex((line) => line.startsWith(prefix));
  const typesOf = (taskId: bigint) => events.filter((e) => "taskId" in e && e.taskId === taskId.toString()).map((e) => e.type);
  return { ctx, trace, events, at, typesOf };
}

test("an idle node starts its enclave on the task before its accept is mined, and completes the task", async () => {
  const task = await submitTask("speculate");
  const id = task.taskId;
  // The accept waits for the enclave to be called (5 s at most): only a speculative run gets there first.
  const node: ReturnType<typeof nodeContext> = nodeContext({ beforeAccept: async () => void (await eventually(() => node.at(`runJob ${id}`) >= 0, 5_000)) });
  await handleTask(node.ctx, task);

  assert.deepEqual(node.typesOf(id), ["task-seen", "task-accepted", "task-executed", "task-completed"], JSON.stringify(node.events));
  assert.ok(node.at(`runJob ${id}`) >= 0, `the enclave ran the task; trace: ${node.trace.join("; ")}`);
  assert.ok(node.at(`runJob ${id}`) < node.at(`accepted ${id}`), `the enclave was called before the accept was mined; trace: ${node.trace.join("; ")}`);
  assert.equal(node.trace[node.at(`runJob ${id}`)], `runJob ${id} while Open`, "the market still had the task open when the enclave started");
  assert.equal((await readTask(network.requester, network.deployment.market, id)).status, "Completed");
  const { accepted, completed } = await taskEvents(network.requester, network.deployment.market, id, task.blockNumber);
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0]!.args.enclave, nodeA.enclave.identity.signer);
  assert.equal(completed.length, 1);
  assert.deepEqual(unhandled, []);
});

test("a speculative run whose accept loses to another candidate is discarded: nothing completed, the task skipped", async () => {
  const task = await submitTask("lose the race");
  const id = task.taskId;
  const { deployment } = network;
  const rival = nodeB.enclave.identity.signer;
  const node: ReturnType<typeof nodeContext> = nodeContext({
    // Once node A's enclave is on the task, the rival candidate's accept is mined first; A's accept follows.
    beforeAccept: async () => {
      await eventually(() => node.at(`runJob ${id}`) >= 0, 5_000);
      await acceptTask(nodeB.operator, deployment.market, { taskId: id, spec: task.spec, enclave: rival });
    },
  });
  await handleTask(node.ctx, task);

  assert.ok(node.at(`runJob ${id}`) >= 0, `node A's enclave ran the task before its accept; trace: ${node.trace.join("; ")}`);
  assert.ok(node.at(`runJob ${id}`) < node.at(`accept failed ${id}`), `trace: ${node.trace.join("; ")}`);
  assert.equal(node.at(`complete ${id}`), -1, "node A sent no completion");
  assert.deepEqual(node.typesOf(id), ["task-seen", "task-skipped"], JSON.stringify(node.events));
  const skipped = node.events.find((e) => e.type === "task-skipped") as Extract<HostEvent, { type: "task-skipped" }>;
  assert.match(skipped.reason, /no longer open/);
  const record = await readTask(network.requester, deployment.market, id);
  assert.equal(record.status, "Accepted", "the task stays with the rival");
  const { accepted, completed } = await taskEvents(network.requester, deployment.market, id, task.blockNumber);
  assert.deepEqual(accepted.map((e) => e.args.enclave), [rival]);
  assert.equal(completed.length, 0);
  // A rejection left behind would surface within a turn or two of the event loop.
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(unhandled, []);
});

test("a node with a run in flight accepts its next task before running it", async () => {
  const first = await submitTask("first");
  const second = await submitTask("second");
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const node: ReturnType<typeof nodeContext> = nodeContext({
    // Each accept gives the enclave a second to be called first: the idle node's first task is, the busy node's second must not be.
    beforeAccept: async (taskId) => void (await eventually(() => node.at(`runJob ${taskId}`) >= 0, 1_000)),
    holdRun: (taskId) => (taskId === first.taskId ? held : undefined),
  });
  const handled = handleTask(node.ctx, first);
  try {
    // The first task's run is in flight (held in front of the enclave) and the task accepted.
    assert.ok(await eventually(() => node.at(`accepted ${first.taskId}`) >= 0, 15_000), `trace: ${node.trace.join("; ")}`);
    await handleTask(node.ctx, second);
  } finally {
    release();
    await handled;
  }

  const { trace, at } = node;
  assert.ok(at(`runJob ${first.taskId}`) < at(`accepted ${first.taskId}`), `the idle node ran its first task speculatively; trace: ${trace.join("; ")}`);
  assert.ok(at(`accepted ${second.taskId}`) >= 0 && at(`runJob ${second.taskId}`) > at(`accepted ${second.taskId}`), `the busy node ran its second task only after its accept was mined; trace: ${trace.join("; ")}`);
  assert.equal(trace[at(`runJob ${second.taskId}`)], `runJob ${second.taskId} while Accepted`);
  for (const task of [first, second]) {
    assert.deepEqual(node.typesOf(task.taskId), ["task-seen", "task-accepted", "task-executed", "task-completed"], JSON.stringify(node.events));
    assert.equal((await readTask(network.requester, network.deployment.market, task.taskId)).status, "Completed");
  }
  assert.deepEqual(unhandled, []);
});
