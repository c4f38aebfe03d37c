/**
 * The relay protocol in one process: the enclave's channel and network API
 * wired to the host relay through an in-memory port. Frames are validated on
 * both sides; a host that breaks the protocol only ever breaks a stream.
 */
import { test, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { createRelayChannel } from "../../../src/enclave/net/channel.ts";
import { certificateSha256, createEnclaveNet } from "../../../src/enclave/net/connect.ts";
import { NetError, type NetErrorCode } from "../../../src/enclave/net/errors.ts";
import { enclaveRelayFrameSchema, hostRelayFrameSchema, MAX_RELAY_CHUNK, type EnclaveRelayFrame } from "../../../src/enclave/net/frames.ts";
import { wired } from "./harness.ts";
import { selfSignedCertificate } from "./postgres-instance.ts";

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function echoServer(): Promise<number> {
  const server = createServer((s) => s.pipe(s));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const isNetError = (code: NetErrorCode, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof NetError, `expected NetError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

test("a raw relay stream carries bytes both ways and ends cleanly", async () => {
  const w = wired();
  const socket = await w.channel.open("127.0.0.1", await echoServer());
  socket.end("ping");
  let got = "";
  for await (const chunk of socket) got += String(chunk);
  assert.equal(got, "ping");
  assert.deepEqual(w.sent.map((f) => f.net), ["open", "data", "end"]);
  w.close();
});

test("the schemas refuse malformed frames in both directions", () => {
  const bad: unknown[] = [
    { net: "open", stream: 1, host: "evil host/x", port: 5432 },
    { net: "open", stream: 1, host: "db.example", port: 0 },
    { net: "open", stream: -1, host: "db.example", port: 5432 },
    { net: "data", stream: 1, bytes: "text" },
    { net: "data", stream: 1, bytes: new Uint8Array(0) },
    { net: "data", stream: 1, bytes: new Uint8Array(MAX_RELAY_CHUNK + 1) },
    { net: "open", stream: 1, host: "db.example", port: 5432, extra: true },
  ];
  for (const frame of bad) assert.equal(enclaveRelayFrameSchema.safeParse(frame).success, false, JSON.stringify(frame));
  assert.equal(enclaveRelayFrameSchema.safeParse({ net: "open", stream: 1, host: "db.example", port: 5432 }).success, true);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "closed", stream: 1, error: "x".repeat(201) }).success, false);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "open", stream: 1, host: "a", port: 1 }).success, false, "the host cannot ask the enclave to open anything");
});

test("a malformed or out-of-order frame from the host drops the stream it names with NET_STREAM_CLOSED", async () => {
  const w = wired();
  const socket = await w.channel.open("127.0.0.1", await echoServer());
  const dropped = new Promise<unknown>((resolve) => socket.once("error", resolve));
  w.inject({ net: "data", stream: 1, bytes: "not bytes" });
  isNetError("NET_STREAM_CLOSED", /malformed relay frame/)(await dropped);
  assert.equal(w.sent.at(-1)?.net, "close", "the enclave tells the host to drop the stream");

  const second = await w.channel.open("127.0.0.1", await echoServer());
  const broken = new Promise<unknown>((resolve) => second.once("error", resolve));
  w.inject({ net: "opened", stream: 2 });
  isNetError("NET_STREAM_CLOSED", /opened twice/)(await broken);
  w.close();
});

test("bad destinations are refused inside the enclave, before anything is sent", async () => {
  const w = wired();
  await assert.rejects(w.channel.open("db.example; rm -rf /", 5432), isNetError("NET_BAD_DESTINATION"));
  await assert.rejects(w.channel.open("db.example", 70000), isNetError("NET_BAD_DESTINATION"));
  assert.equal(w.sent.length, 0);
  w.close();
});

test("a closed port surfaces as NET_CONNECT_FAILED with the host's reason", async () => {
  const w = wired();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await assert.rejects(w.channel.open("127.0.0.1", port), isNetError("NET_CONNECT_FAILED", /ECONNREFUSED/));
  w.close();
});

test("an attested destination without an enclave certificate is refused with NET_NO_CERTIFICATE", async () => {
  const w = wired();
  const net = createEnclaveNet({ channel: w.channel });
  await assert.rejects(
    net.connect({ host: "127.0.0.1", port: 1, pin: { kind: "attested", verify: () => Promise.reject(new Error("unreachable")) } }),
    isNetError("NET_NO_CERTIFICATE"),
  );
  assert.equal(w.sent.length, 0);
  w.close();
});

test("a library socket is pinned to its destination: connecting it elsewhere is refused", async () => {
  const w = wired();
  const net = createEnclaveNet({ channel: w.channel });
  const socket = net.socketFor({ host: "127.0.0.1", port: 5432, pin: { kind: "certificate", sha256: "00".repeat(32) } }) as unknown as { connect(port: number, host: string): void; once(e: string, l: (e: unknown) => void): void };
  const failed = new Promise<unknown>((resolve) => socket.once("error", resolve));
  socket.connect(5433, "127.0.0.1");
  isNetError("NET_BAD_DESTINATION", /pinned to 127\.0\.0\.1:5432/)(await failed);
  assert.equal(w.sent.length, 0);
  w.close();
});

test("a server that is not TLS at all fails the handshake with NET_TLS_FAILED", async () => {
  const w = wired();
  const net = createEnclaveNet({ channel: w.channel, handshakeTimeoutMs: 5_000 });
  const server = createServer((s) => s.once("data", () => s.end("HTTP/1.1 400 Bad Request\r\n\r\n")));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await assert.rejects(
    net.connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, pin: { kind: "certificate", sha256: "00".repeat(32) } }),
    isNetError("NET_TLS_FAILED"),
  );
  w.close();
});

test("by default the host relay refuses loopback and private addresses, after DNS too", async () => {
  const w = wired({});
  const port = await echoServer();
  await assert.rejects(w.channel.open("127.0.0.1", port), isNetError("NET_CONNECT_FAILED", /ERR_IP_BLOCKED/));
  await assert.rejects(w.channel.open("localhost", port), isNetError("NET_CONNECT_FAILED", /ERR_IP_BLOCKED/));
  await assert.rejects(w.channel.open("10.1.2.3", port), isNetError("NET_CONNECT_FAILED", /ERR_IP_BLOCKED/));
  w.close();
});

test("flow control: a destination that floods an enclave which is not reading is paused at the host", async () => {
  const total = 32 * 1024 * 1024;
  const server = createServer((s) => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once("drain", pump);
      }
      s.end();
    };
    pump();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  let carried = 0;
  const w = wired({ privateDestinations: "allow", onCarried: (c) => void (carried += c.bytes.length) });
  const socket = await w.channel.open("127.0.0.1", (server.address() as AddressInfo).port);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(carried < 4 * 1024 * 1024, `the host carried ${carried} bytes to an enclave that read none`);
  let read = 0;
  for await (const chunk of socket) read += (chunk as Buffer).length;
  assert.equal(read, total);
  w.close();
});

test("flow control: an enclave writing to a destination that does not read is held back by the host's pause", async (t) => {
  const held: Socket[] = [];
  const server = createServer((s) => {
    s.pause();
    held.push(s);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  let carried = 0;
  const w = wired({ privateDestinations: "allow", onCarried: (c) => void (carried += c.direction === "to-destination" ? c.bytes.length : 0) });
  const socket = await w.channel.open("127.0.0.1", (server.address() as AddressInfo).port);
  t.after(() => {
    socket.destroy();
    held.forEach((s) => s.destroy());
    w.close();
  });
  const chunk = Buffer.alloc(64 * 1024, 1);
  // An asynchronous writer that honours backpressure, as a well-behaved library does, for up to 32 MiB or 1 s.
  const deadline = Date.now() + 1_000;
  let written = 0;
  while (written < 32 * 1024 * 1024 && Date.now() < deadline) {
    written += chunk.length;
    if (socket.write(chunk)) await new Promise((resolve) => setImmediate(resolve));
    else await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())))]);
  }
  assert.ok(carried < 16 * 1024 * 1024, `the enclave pushed ${carried} bytes to a destination that read none`);
});

test("a host that keeps sending after the enclave's pause is cut off with NET_STREAM_CLOSED", async (t) => {
  const w = wired();
  const socket = await w.channel.open("127.0.0.1", await echoServer());
  t.after(() => {
    socket.destroy();
    w.close();
  });
  const cut = new Promise<unknown>((resolve) => socket.once("error", resolve));
  const frame = new Uint8Array(MAX_RELAY_CHUNK);
  for (let i = 0; i < 80 && !socket.destroyed; i++) w.inject({ net: "data", stream: 1, bytes: frame });
  isNetError("NET_STREAM_CLOSED", /buffered after pause/)(await Promise.race([cut, new Promise((resolve) => setTimeout(resolve, 2_000, "not cut off"))]));
  assert.ok(w.sent.some((f) => f.net === "pause"), "the enclave asked the host to pause first");
});

/** A pinned TLS session from the enclave's net, through a wired relay, to a TLS echo server. */
async function pinnedEchoSession(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "cloister-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { certPem, keyPem } = selfSignedCertificate(dir, "echo.test");
  const server = createTlsServer({ cert: certPem, key: keyPem }, (s) => s.pipe(s));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const w = wired();
  t.after(() => w.close());
  const net = createEnclaveNet({ channel: w.channel });
  const { socket } = await net.connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, pin: { kind: "certificate", sha256: certificateSha256(certPem) } });
  return { w, socket };
}

test("a host that resets an established pinned session: the job gets a typed error, the enclave carries on", async (t) => {
  const { w, socket } = await pinnedEchoSession(t);
  socket.write("hello");
  await new Promise((resolve) => socket.once("data", resolve));
  const failed = new Promise<unknown>((resolve) => socket.once("error", resolve));
  w.inject({ net: "closed", stream: 1, error: "ECONNRESET" });
  isNetError("NET_STREAM_CLOSED", /ECONNRESET/)(await failed);
  // The channel still opens new streams.
  const again = await w.channel.open("127.0.0.1", await echoServer());
  again.destroy();
});

test("a reset of a session whose job code listens for no errors closes the socket and does not end the enclave process", async (t) => {
  const { w, socket } = await pinnedEchoSession(t);
  const closed = new Promise((resolve) => socket.once("close", resolve));
  // No error listener of the job's own: an unheard 'error' would be an uncaught exception here.
  w.inject({ net: "closed", stream: 1, error: "ECONNRESET" });
  await closed;
  assert.ok(socket.destroyed);
});

test("a relay that never answers open cannot hold the job: the budget runs out with NET_TLS_FAILED", async () => {
  const sent: EnclaveRelayFrame[] = [];
  const channel = createRelayChannel({ send: (frame) => void sent.push(frame), onFrame: () => {} });
  const net = createEnclaveNet({ channel, handshakeTimeoutMs: 200 });
  await assert.rejects(net.connect({ host: "db.example", port: 5432, pin: { kind: "certificate", sha256: "00".repeat(32) } }), isNetError("NET_TLS_FAILED", /within 200 ms/));
  assert.deepEqual(sent.map((f) => f.net), ["open", "close"], "the enclave withdraws the open it gave up on");
});
