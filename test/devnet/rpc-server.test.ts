/** The chain's JSON-RPC server over the journaled local chain: standard answers, signed transactions journaled, and nothing cross-origin. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parseEther } from "viem";
import { chainDefinition, createWriterClient } from "../../src/chain/clients.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
import { ChainRpcServerError, startChainRpcServer } from "../../src/chain/rpc-server.ts";

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test("viem over HTTP sends a transaction that is journaled and replayed; protocol errors are JSON-RPC errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-rpc-"));
  dirs.push(dir);
  const recipient = "0x00000000000000000000000000000000c0ffee00";
  let hash: `0x${string}`;
  {
    const chain = await startLocalChain({ dataDir: dir });
    const server = await startChainRpcServer({ provider: chain.provider });
    try {
      const writer = createWriterClient({ endpoint: { rpcUrl: server.url }, chain: chainDefinition(chain.chainId, server.url), account: chain.accounts.requester, pollingInterval: 20 });
      assert.equal(await writer.getChainId(), chain.chainId);
      hash = await writer.sendTransaction({ to: recipient, value: parseEther("1") });
      assert.equal((await writer.waitForTransactionReceipt({ hash })).status, "success");

      const call = (body: string, init: RequestInit = {}) => fetch(server.url, { method: "POST", body, ...init });
      const batch = (await (await call(JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }, { jsonrpc: "2.0", id: "b", method: "no_such_method", params: [] }]))).json()) as { id: unknown; result?: string; error?: { code: number } }[];
      assert.equal(batch[0]!.id, 1);
      assert.equal(Number(batch[0]!.result), 1);
      assert.equal(batch[1]!.id, "b");
      assert.equal(typeof batch[1]!.error?.code, "number");
      assert.equal(((await (await call("{not json")).json()) as { error: { code: number } }).error.code, -32700);
      assert.equal(((await (await call(JSON.stringify({ id: 3, method: "eth_chainId" }))).json()) as { error: { code: number } }).error.code, -32600);
      assert.equal(((await (await call("[]")).json()) as { error: { code: number } }).error.code, -32600);
      // A state change the journal cannot replay is refused, over HTTP as in process.
      const refused = (await (await call(JSON.stringify({ jsonrpc: "2.0", id: 4, method: "hardhat_setBalance", params: [recipient, "0x1"] }))).json()) as { error: { message: string } };
      assert.match(refused.error.message, /cannot be replayed/);
      assert.equal((await call(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "eth_chainId" }), { headers: { origin: "https://evil.example" } })).status, 403);
      assert.equal((await fetch(server.url)).status, 405);
    } finally {
      await server.close();
      await chain.close();
    }
  }
  const resumed = await startLocalChain({ dataDir: dir });
  const server = await startChainRpcServer({ provider: resumed.provider });
  try {
    const reader = createWriterClient({ endpoint: { rpcUrl: server.url }, chain: chainDefinition(resumed.chainId, server.url), account: resumed.accounts.requester });
    assert.equal(await reader.getBalance({ address: recipient }), parseEther("1"));
    assert.equal((await reader.getTransactionReceipt({ hash })).status, "success");
  } finally {
    await server.close();
    await resumed.close();
  }
});

test("the JSON-RPC server refuses to bind beyond loopback", async () => {
  await assert.rejects(startChainRpcServer({ provider: { request: async () => null }, host: "0.0.0.0" }), (e) => e instanceof ChainRpcServerError && /127\.0\.0\.1/.test(e.message));
});

test("bigints in a provider's answer go out as hex quantities", async () => {
  // Any EIP-1193 provider may be served; EDR answers in JSON already, an in-process one may answer with bigints.
  const provider = { request: async ({ method }: { method: string }) => (method === "eth_blockNumber" ? 255n : { balance: 16n, note: "plain" }) };
  const server = await startChainRpcServer({ provider });
  try {
    const call = async (method: string) =>
      ((await (await fetch(server.url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method }) })).json()) as { result: unknown }).result;
    assert.equal(await call("eth_blockNumber"), "0xff");
    assert.deepEqual(await call("eth_getBalance"), { balance: "0x10", note: "plain" });
  } finally {
    await server.close();
  }
});
