/**
 * The chain's JSON-RPC server against requests meant to exhaust its memory: one batch of 10,000
 * eth_getLogs once produced a 198 MB reply. Batches have a size cap, and every reply (one request's, and
 * a batch's together) a byte cap, over HTTP and WebSocket alike; over a cap the client gets a JSON-RPC
 * error and the server keeps serving.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { createWriterClient } from "../../src/chain/clients.ts";
import { deployCloister } from "../../src/chain/deploy.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";

interface Reply {
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string };
}

let chain: LocalChain;
let server: ChainRpcServer;
/** Bytes of the reply to getLogs over the whole chain (the deployment's events), measured with no cap. */
let allLogsReplyBytes: number;
const getAllLogs = (id: number) => ({ jsonrpc: "2.0", id, method: "eth_getLogs", params: [{ fromBlock: "0x0", toBlock: "latest" }] });

before(async () => {
  chain = await startLocalChain({ operators: 0 });
  // The deployment's role and ownership events are the logs to query.
  const deployer = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
  await deployCloister(deployer, { attester: chain.accounts.deployer.address });
  const logs = (await chain.provider.request({ method: "eth_getLogs", params: [{ fromBlock: "0x0", toBlock: "latest" }] })) as unknown[];
  assert.ok(logs.length > 2, "the deployment emits events to query");
  allLogsReplyBytes = JSON.stringify({ jsonrpc: "2.0", id: 1, result: logs }).length;
  // A reply cap between one getLogs reply and two.
  server = await startChainRpcServer({ provider: chain.provider, maxBatchItems: 8, maxResponseBytes: Math.ceil(allLogsReplyBytes * 1.5) });
});
after(async () => {
  await server?.close();
  await chain?.close();
});

async function post(body: unknown): Promise<Reply | Reply[]> {
  return (await (await fetch(server.url, { method: "POST", body: JSON.stringify(body) })).json()) as Reply | Reply[];
}

async function overWebSocket(body: unknown): Promise<Reply | Reply[]> {
  const ws = new WebSocket(server.wsUrl);
  try {
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const reply = new Promise<string>((resolve) => ws.once("message", (data: Buffer) => resolve(data.toString("utf8"))));
    ws.send(JSON.stringify(body));
    return JSON.parse(await reply) as Reply | Reply[];
  } finally {
    ws.close();
  }
}

const healthy = async () => assert.equal(Number(((await post({ jsonrpc: "2.0", id: 1, method: "eth_chainId" })) as Reply).result), chain.chainId);

for (const [transport, send] of [
  ["HTTP", post],
  ["WebSocket", overWebSocket],
] as const) {
  test(`${transport}: a batch over the cap is refused with one JSON-RPC error, and the server stays healthy`, async () => {
    const refused = await send(Array.from({ length: 9 }, (_, i) => getAllLogs(i)));
    assert.ok(!Array.isArray(refused));
    assert.equal(refused.error?.code, -32600);
    assert.match(refused.error?.message ?? "", /batch of 9 requests is more than this node's limit of 8/);
    const within = (await send(Array.from({ length: 8 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "eth_blockNumber" })))) as Reply[];
    assert.equal(within.length, 8);
    assert.ok(within.every((r) => typeof r.result === "string"));
    await healthy();
  });

  test(`${transport}: a getLogs reply within the cap is served; a batch whose replies together pass it errors from there on`, async () => {
    const one = (await send(getAllLogs(1))) as Reply;
    assert.ok(Array.isArray(one.result));
    const batch = (await send([getAllLogs(1), getAllLogs(2), getAllLogs(3)])) as Reply[];
    assert.deepEqual(
      batch.map((r) => r.id),
      [1, 2, 3],
    );
    assert.ok(Array.isArray(batch[0]!.result));
    for (const late of batch.slice(1)) {
      assert.equal(late.error?.code, -32005);
      assert.match(late.error?.message ?? "", /response size exceeded/);
    }
    await healthy();
  });
}

test("a single getLogs reply over the cap is a JSON-RPC error naming the limit", async () => {
  const small = await startChainRpcServer({ provider: chain.provider, maxResponseBytes: Math.floor(allLogsReplyBytes / 2) });
  try {
    const reply = (await (await fetch(small.url, { method: "POST", body: JSON.stringify(getAllLogs(7)) })).json()) as Reply;
    assert.equal(reply.id, 7);
    assert.equal(reply.error?.code, -32005);
    assert.match(reply.error?.message ?? "", new RegExp(`response size exceeded: .*limit of ${Math.floor(allLogsReplyBytes / 2)} bytes.*smaller block range`));
  } finally {
    await small.close();
  }
});

test("the default caps take the batches Cloister's own clients send and refuse the 10,000-call batch", async () => {
  const defaults = await startChainRpcServer({ provider: chain.provider });
  try {
    const call = async (body: unknown) => (await (await fetch(defaults.url, { method: "POST", body: JSON.stringify(body) })).json()) as Reply | Reply[];
    assert.equal(((await call(Array.from({ length: 64 }, (_, i) => getAllLogs(i)))) as Reply[]).length, 64);
    const refused = (await call(Array.from({ length: 10_000 }, (_, i) => getAllLogs(i)))) as Reply;
    assert.equal(refused.error?.code, -32600);
  } finally {
    await defaults.close();
  }
});
