/**
 * Every HTTP service of Cloister against requests a client library would never send but an attacker can:
 * request targets Node's HTTP parser accepts and WHATWG URL rejects, broken percent-encoding, oversized
 * headers. Each must get a 4xx with a readable body, and the server must keep serving; one such request
 * used to throw outside the handler and take the whole devnet down.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { startCasHttpServer } from "../../src/cas/http-server.ts";
import { startChainRpcServer } from "../../src/chain/rpc-server.ts";
import { startNodeHttpServer } from "../../src/host/http-server.ts";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";

/** Sends raw bytes and reads one response: until its Content-Length or last chunk is in, or the server closes the connection. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 5 s to ${JSON.stringify(request.slice(0, 60))}`));
    }, 5_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString("latin1");
      const headEnd = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headEnd));
      if (headEnd === -1) return;
      if (length ? text.length - headEnd - 4 >= Number(length[1]) : text.endsWith("\r\n0\r\n\r\n")) done();
    });
    socket.on("error", () => {});
    socket.on("close", done);
    socket.write(request);
  });
}

const requestLine = (method: string, target: string, extra = "") => `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`;

/** Targets Node's parser lets through that are not URLs, or not what a handler expects. */
const badTargets = ["//", "http://[::1", "http://user:pw@[zz]:99999/api/v0/version", `http://${"a".repeat(300)}:-1/`, "//[::1]:x/healthz"];

interface Service {
  name: string;
  port: number;
  /** A valid request; it must answer 200 after the attacks. */
  healthy(): Promise<number>;
  close(): Promise<void>;
}

async function services(): Promise<Service[]> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-malformed-"));
  const store = await openHeliaStore(dir);
  const kubo = await startKuboRpcServer({ store });
  const chain = await startChainRpcServer({ provider: { request: async ({ method }) => (method === "eth_chainId" ? "0x7a69" : null) } });
  const cas = await startCasHttpServer({
    service: { challenge: () => `0x${"ab".repeat(32)}`, register: () => Promise.reject(new Error("not used")) },
    deployment: { chainId: 31337, registry: `0x${"44".repeat(20)}`, market: `0x${"55".repeat(20)}`, deployBlock: 1n },
  });
  const node = await startNodeHttpServer({
    port: 0,
    health: () => ({
      status: "ok",
      enclave: { signer: "0x", simulated: true, up: true }, checkpointBlock: null,
      lastCrawlAgeMs: null,
      registration: { state: "registered", expiry: null, chainTime: null, secondsToExpiry: null, failures: 0 },
    }),
    metrics: { render: () => "" },
  });
  return [
    {
      name: "Kubo RPC",
      port: kubo.port,
      healthy: async () => (await fetch(`${kubo.url}/api/v0/version`, { method: "POST" })).status,
      close: async () => {
        await kubo.close();
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    },
    {
      name: "chain JSON-RPC",
      port: chain.port,
      healthy: async () => (await fetch(chain.url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId" }) })).status,
      close: () => chain.close(),
    },
    { name: "attestation service", port: cas.port, healthy: async () => (await fetch(`${cas.url}/deployment`)).status, close: () => cas.close() },
    { name: "node health", port: node.port, healthy: async () => (await fetch(`${node.url}/healthz`)).status, close: () => node.close() },
  ];
}

test("malformed request targets, percent-encoding and headers get a 4xx with a reason, and every server keeps serving", async (t) => {
  const all = await services();
  t.after(() => Promise.all(all.map((s) => s.close())));
  for (const service of all) {
    for (const method of ["GET", "POST"]) {
      for (const target of badTargets) {
        const answer = await rawExchange(service.port, requestLine(method, target));
        assert.match(answer, /^HTTP\/1\.1 400 /, `${service.name}: ${method} ${target} → ${answer.slice(0, 200)}`);
        assert.match(answer.split("\r\n\r\n")[1] ?? "", /valid|path/, `${service.name}: ${method} ${target} answered without a reason`);
      }
    }
    const percent = await rawExchange(service.port, requestLine("POST", "/api/v0/cat?arg=%E0%A4%A&offset=%zz"));
    // A refusal or an answer (the chain RPC ignores the path), never a server failure.
    assert.match(percent, /^HTTP\/1\.1 [24]\d\d /, `${service.name}: invalid percent-encoding → ${percent.slice(0, 200)}`);
    const hugeHeader = await rawExchange(service.port, requestLine("GET", "/", `X-Filler: ${"x".repeat(64 * 1024)}\r\n`));
    assert.match(hugeHeader, /^HTTP\/1\.1 431 /, `${service.name}: a 64 KiB header → ${hugeHeader.slice(0, 200)}`);
    assert.match(hugeHeader.split("\r\n\r\n")[1] ?? "", /header/i);
    const upgrade = await rawExchange(service.port, requestLine("GET", "//", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n").replace("Connection: close", "Connection: Upgrade"));
    assert.match(upgrade, /^HTTP\/1\.1 4\d\d /, `${service.name}: an upgrade to // → ${upgrade.slice(0, 200)}`);
    assert.equal(await service.healthy(), 200, `${service.name} stopped serving`);
  }
});
