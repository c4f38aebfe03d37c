/** devnet up says ready only when every endpoint answers: an endpoint that does not is named. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { checkEndpointsAnswer } from "../../src/devnet/readiness.ts";
import { DevnetError } from "../../src/devnet/errors.ts";

test("an endpoint that does not answer, or answers for another chain, is named", async () => {
  // Answers eth_chainId for chain 31337 on POST /, and 200 on everything else; no WebSocket.
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(req.url === "/" ? JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x7a69" }) : "{}"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const endpoints = { chainId: 31337, rpcUrl: url, wsUrl: url.replace("http:", "ws:"), ipfsUrl: url, casUrl: url, nodeUrls: [url] };
    await assert.rejects(checkEndpointsAnswer(endpoints, 2_000), (e: unknown) => e instanceof DevnetError && /chain WebSocket .*: the connection failed/.test(e.message) && !/JSON-RPC|IPFS|attestation|node 0/.test(e.message));
    await assert.rejects(checkEndpointsAnswer({ ...endpoints, chainId: 1 }, 2_000), (e: unknown) => e instanceof DevnetError && /chain JSON-RPC .*not 1/.test(e.message));
    await assert.rejects(checkEndpointsAnswer({ ...endpoints, nodeUrls: ["http://127.0.0.1:1"] }, 2_000), (e: unknown) => e instanceof DevnetError && /node 0 http:\/\/127\.0\.0\.1:1\/healthz/.test(e.message));
  } finally {
    server.close();
  }
});
