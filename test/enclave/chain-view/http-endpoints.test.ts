/**
 * The enclave's HTTP JSON-RPC endpoint (http-endpoints.ts): a proved read through it from the in-process chain
 * served over HTTP, and what an endpoint that misbehaves gets: its error message, a refusal of an answer over the
 * size limit, and a clear error for an answer that is not JSON.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ChainView } from "../../../src/enclave/chain-view/chain-view.ts";
import { httpEndpoint } from "../../../src/enclave/chain-view/http-endpoints.ts";
import { singleEndpointHeaderSource } from "../../../src/enclave/chain-view/quorum.ts";
import { call } from "../../../src/enclave/chain-view/rpc.ts";
import { startLocalChain, type LocalChain } from "../../../src/chain/local-chain.ts";
import { startChainRpcServer, type ChainRpcServer } from "../../../src/chain/rpc-server.ts";

let chain: LocalChain;
let rpc: ChainRpcServer;
let odd: Server;
let oddUrl: string;

before(async () => {
  chain = await startLocalChain();
  rpc = await startChainRpcServer({ provider: chain.provider });
  // An endpoint that answers by method: a JSON-RPC error, 2 MB of padding, or a gateway's HTML page.
  odd = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      const { id, method } = JSON.parse(text) as { id: number; method: string };
      if (method === "eth_error") return res.end(JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32000, message: "header not found" } }));
      if (method === "eth_big") return res.end(JSON.stringify({ jsonrpc: "2.0", id, result: "0x" + "00".repeat(1_000_000) }));
      res.writeHead(502, { "content-type": "text/html" }).end("<html>bad gateway</html>");
    });
  });
  await new Promise<void>((r) => odd.listen(0, "127.0.0.1", r));
  oddUrl = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((r) => odd?.close(r));
  await rpc?.close();
  await chain?.close();
});

test("a balance read through the endpoint from the chain's JSON-RPC server is proved against the checkpoint, twice", async () => {
  const endpoint = httpEndpoint("local", rpc.url);
  const view = new ChainView({ headers: singleEndpointHeaderSource(chain.chainId, endpoint), data: endpoint });
  const address = chain.accounts.operators[0]!.address;
  const { account } = await view.account(address);
  assert.equal(account.balance, await chain.provider.request({ method: "eth_getBalance", params: [address, "latest"] }).then((b) => BigInt(b as string)));
  const again = await view.account(address);
  assert.equal(again.account.balance, account.balance);
});

test("an endpoint's error, an answer over the limit and an answer that is not JSON fail the call with what was wrong", async () => {
  const endpoint = httpEndpoint("odd", oddUrl, { maxAnswerBytes: 1_000_000 });
  await assert.rejects(call(endpoint, "eth_error", [], 5000), (e: Error) => e.cause instanceof Error && /eth_error: header not found/.test(e.cause.message));
  await assert.rejects(call(endpoint, "eth_big", [], 5000), (e: Error) => e.cause instanceof Error && /answer is over 1000000 bytes/.test(e.cause.message));
  await assert.rejects(call(endpoint, "eth_html", [], 5000), (e: Error) => e.cause instanceof Error && /HTTP 502 with no JSON/.test(e.cause.message));
  // Within the limit the same answer is taken.
  const roomy = httpEndpoint("odd", oddUrl, { maxAnswerBytes: 4_000_000 });
  assert.equal(((await call(roomy, "eth_big", [], 5000)) as string).length, 2 + 2_000_000);
});
