/**
 * Shared eth_getProof answers (src/chain/shared-proof-replies.ts) on the in-process EDR chain: identical
 * requests at a block below the head make one node call and get the node's own answer; the head's block, a tag
 * and a rewritten history are not shared; over the JSON-RPC server the spliced reply is the node's answer.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { toHex } from "viem";
import type { Eip1193Provider } from "../../src/chain/eip1193.ts";
import { startLocalChain, type LocalChain } from "../../src/chain/local-chain.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../src/chain/rpc-server.ts";
import { SharedProofReplies } from "../../src/chain/shared-proof-replies.ts";

let chain: LocalChain;
let server: ChainRpcServer;
let proofCalls = 0;
let counting: Eip1193Provider;

before(async () => {
  chain = await startLocalChain();
  counting = {
    request(args) {
      if (args.method === "eth_getProof") proofCalls += 1;
      return chain.provider.request(args);
    },
  };
  await chain.provider.request({ method: "evm_mine", params: [] });
  await chain.provider.request({ method: "evm_mine", params: [] });
  server = await startChainRpcServer({ provider: { ...counting, on: chain.provider.on, removeListener: chain.provider.removeListener } });
});
after(async () => {
  await server?.close();
  await chain?.close();
});

const account = () => chain.accounts.operators[0]!.address;
const head = async () => BigInt((await chain.provider.request({ method: "eth_blockNumber" })) as string);

test("identical requests below the head make one node call and each gets the node's answer", async () => {
  const shared = new SharedProofReplies(counting);
  const params = [account(), [toHex(0n, { size: 32 })], toHex((await head()) - 1n)];
  const direct = JSON.stringify(await chain.provider.request({ method: "eth_getProof", params }));
  proofCalls = 0;
  const answers = await Promise.all([shared.request(params)!, shared.request(params)!, shared.request([...params])!]);
  assert.equal(proofCalls, 1);
  for (const a of answers) assert.equal(a.json, direct);
  // Kept: a later identical request is served without a call, another block is a call of its own.
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await shared.request(params)!).json, direct);
  assert.equal(proofCalls, 1);
  await shared.request([params[0], params[1], toHex((await head()) - 2n)]);
  assert.equal(proofCalls, 2);
  shared.forget();
  assert.equal((await shared.request(params)!).json, direct);
  assert.equal(proofCalls, 3);
});

test("a tag or a hash is not shared, and the head's block is not kept once answered", async () => {
  const shared = new SharedProofReplies(counting);
  assert.equal(shared.request([account(), [], "latest"]), undefined);
  assert.equal(shared.request([account(), [], { blockHash: toHex(1n, { size: 32 }) }]), undefined);
  assert.equal(shared.request([account(), []]), undefined);
  const params = [account(), [], toHex(await head())];
  proofCalls = 0;
  await shared.request(params);
  await new Promise((r) => setTimeout(r, 20));
  await shared.request(params);
  assert.equal(proofCalls, 2);
});

test("over the server a shared answer is spliced into each reply with the request's id; evm_revert drops what is kept", async () => {
  const rpc = async (id: number | string, method: string, params: unknown[]) => {
    const res = await fetch(server.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id, method, params }) });
    return (await res.json()) as { id: unknown; result?: unknown; error?: unknown };
  };
  const snapshot = (await rpc(1, "evm_snapshot", [])).result as string;
  await rpc(2, "evm_mine", []);
  const params = [account(), [toHex(1n, { size: 32 })], toHex((await head()) - 1n)];
  const direct = await chain.provider.request({ method: "eth_getProof", params });
  proofCalls = 0;
  const [a, b] = await Promise.all([rpc(7, "eth_getProof", params), rpc("x", "eth_getProof", params)]);
  assert.equal(proofCalls, 1);
  assert.deepEqual(a, { jsonrpc: "2.0", id: 7, result: direct });
  assert.deepEqual(b, { jsonrpc: "2.0", id: "x", result: direct });
  assert.equal((await rpc(8, "evm_revert", [snapshot])).result, true);
  await rpc(9, "eth_getProof", params);
  assert.equal(proofCalls, 2);
});
