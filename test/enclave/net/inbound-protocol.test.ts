/**
 * The inbound half of the relay protocol in one process: listen frames, the
 * host's listeners and their negative stream ids, and the message codec.
 * The enclave's channel is wired to the real host relay in memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { Duplex, PassThrough } from "node:stream";
import type { RelaySocket } from "../../../src/enclave/net/channel.ts";
import { NetError } from "../../../src/enclave/net/errors.ts";
import { enclaveRelayFrameSchema, hostRelayFrameSchema } from "../../../src/enclave/net/frames.ts";
import { createMessageStream } from "../../../src/enclave/net/messages.ts";
import { wired } from "./harness.ts";
import type { CarriedBytes } from "../../../src/host/net-relay.ts";

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

const read = async (s: AsyncIterable<unknown>) => {
  let out = "";
  for await (const chunk of s) out += String(chunk);
  return out;
};

test("the schemas keep the host's inbound stream ids (negative) apart from the enclave's (non-negative)", () => {
  // The enclave can never open a stream in the host's id space ...
  assert.equal(enclaveRelayFrameSchema.safeParse({ net: "open", stream: -1, host: "example.com", port: 443 }).success, false);
  // ... and the host can never hand the enclave an accepted stream in the enclave's.
  assert.equal(hostRelayFrameSchema.safeParse({ net: "accepted", listener: 1, stream: 0 }).success, false);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "accepted", listener: 1, stream: 5 }).success, false);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "opened", stream: -3 }).success, false);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "accepted", listener: 1, stream: -5 }).success, true);
  // Stream frames name either space.
  assert.equal(enclaveRelayFrameSchema.safeParse({ net: "data", stream: -5, bytes: Uint8Array.of(1) }).success, true);
  assert.equal(hostRelayFrameSchema.safeParse({ net: "end", stream: -5 }).success, true);
});

test("the schemas validate the listen frames", () => {
  const ok = (schema: typeof enclaveRelayFrameSchema | typeof hostRelayFrameSchema, f: unknown) => schema.safeParse(f).success;
  assert.ok(ok(enclaveRelayFrameSchema, { net: "listen", listener: 1 }));
  assert.ok(ok(enclaveRelayFrameSchema, { net: "unlisten", listener: 1 }));
  assert.ok(!ok(enclaveRelayFrameSchema, { net: "listen", listener: -1 }));
  assert.ok(!ok(enclaveRelayFrameSchema, { net: "listen", listener: 1, port: 80 }), "strict: no extra fields (the enclave does not choose the port)");
  assert.ok(ok(hostRelayFrameSchema, { net: "listening", listener: 1, host: "127.0.0.1", port: 4000 }));
  assert.ok(!ok(hostRelayFrameSchema, { net: "listening", listener: 1, host: "no spaces allowed", port: 4000 }));
  assert.ok(!ok(hostRelayFrameSchema, { net: "listening", listener: 1, host: "127.0.0.1", port: 0 }));
  assert.ok(ok(hostRelayFrameSchema, { net: "listen-failed", listener: 1, reason: "no" }));
  assert.ok(!ok(hostRelayFrameSchema, { net: "listen-failed", listener: 1, reason: "x".repeat(201) }));
  assert.ok(!ok(hostRelayFrameSchema, { net: "accepted", listener: 1.5, stream: -1 }));
});

test("a host listener carries inbound TCP bytes both ways under negative ids, reports them to onCarried, and listeners() lists it", async () => {
  const carried: CarriedBytes[] = [];
  const announced: unknown[] = [];
  const w = wired({ inbound: { advertiseHost: "node.example", onListening: (l) => announced.push(l) }, onCarried: (c) => carried.push(c) });
  const listener = await w.channel.listen();
  assert.equal(listener.address.host, "node.example");
  assert.deepEqual(announced, [{ listener: listener.id, host: "node.example", port: listener.address.port }]);
  assert.deepEqual(w.relay.listeners(), [{ listener: listener.id, host: "node.example", port: listener.address.port }]);
  const accepted: RelaySocket[] = [];
  listener.onStream((s) => {
    accepted.push(s);
    // An echo that upper-cases.
    void read(s).then((text) => s.end(text.toUpperCase()));
  });
  const a = await dial(listener.address.port);
  const b = await dial(listener.address.port);
  a.end("first");
  b.end("second");
  assert.equal(await read(a), "FIRST");
  assert.equal(await read(b), "SECOND");
  const ids = w.received.filter((f) => f.net === "accepted").map((f) => f.stream);
  assert.equal(ids.length, 2);
  assert.ok(ids.every((id) => id < 0));
  assert.notEqual(ids[0], ids[1]);
  assert.ok(carried.some((c) => c.direction === "to-enclave" && c.stream === ids[0] && Buffer.from(c.bytes).toString() === "first"));
  assert.ok(carried.some((c) => c.direction === "to-destination" && Buffer.from(c.bytes).toString() === "SECOND"));
  listener.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(w.relay.listeners(), []);
  await assert.rejects(dial(listener.address.port), /ECONNREFUSED/);
  w.close();
});

test("without the inbound option the host refuses every listen with NET_LISTEN_FAILED", async () => {
  const w = wired({});
  await assert.rejects(w.channel.listen(), (e: unknown) => e instanceof NetError && e.code === "NET_LISTEN_FAILED" && /accepts no inbound connections/.test(e.message));
  assert.deepEqual(w.relay.listeners(), []);
});

test("the host's limits: listeners per enclave, and inbound connections beyond maxConnections are closed", async () => {
  const w = wired({ inbound: { maxListeners: 1, maxConnections: 1 } });
  const listener = await w.channel.listen();
  await assert.rejects(w.channel.listen(), (e: unknown) => e instanceof NetError && e.code === "NET_LISTEN_FAILED" && /too many listeners/.test(e.message));
  listener.onStream(() => {});
  await dial(listener.address.port);
  const second = await dial(listener.address.port);
  assert.equal(await read(second), "", "the second connection is closed by the host");
  assert.equal(w.received.filter((f) => f.net === "accepted").length, 1);
  w.close();
});

test("an accepted stream for a listener the enclave does not hold is closed by the enclave; a duplicate id is refused", async () => {
  const w = wired({ inbound: {} });
  w.inject({ net: "accepted", listener: 42, stream: -7 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(w.sent.at(-1), { net: "close", stream: -7 });
  const listener = await w.channel.listen();
  const got: RelaySocket[] = [];
  listener.onStream((s) => got.push(s));
  w.inject({ net: "accepted", listener: listener.id, stream: -9 });
  w.inject({ net: "accepted", listener: listener.id, stream: -9 });
  await new Promise((r) => setImmediate(r));
  assert.equal(got.length, 1);
  assert.deepEqual(w.sent.at(-1), { net: "close", stream: -9 });
  w.close();
});

test("when the enclave goes away the host closes its listeners and inbound streams", async () => {
  const w = wired({ inbound: {} });
  const listener = await w.channel.listen();
  listener.onStream(() => {});
  const peer = await dial(listener.address.port);
  const closed = new Promise<void>((resolve) => peer.once("close", () => resolve()));
  await new Promise((r) => setTimeout(r, 20));
  w.close();
  await closed;
  assert.deepEqual(w.relay.listeners(), []);
  await assert.rejects(dial(listener.address.port), /ECONNREFUSED/);
});

/** Two ends of an in-memory byte pipe. */
function pipePair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  return [Duplex.from({ readable: ba, writable: ab }), Duplex.from({ readable: ab, writable: ba })];
}

test("messages: length-prefixed frames round-trip, including empty and split ones, and a clean end reads as null", async () => {
  const [a, b] = pipePair();
  const ma = createMessageStream(a, { maxMessageBytes: 1024 });
  const mb = createMessageStream(b, { maxMessageBytes: 1024 });
  await ma.send(Uint8Array.of(1, 2, 3));
  await ma.send(new Uint8Array(0));
  await ma.send(new Uint8Array(1024).fill(7));
  await ma.end();
  assert.deepEqual(await mb.receive(), Uint8Array.of(1, 2, 3));
  assert.deepEqual(await mb.receive(), new Uint8Array(0));
  assert.deepEqual(await mb.receive(), new Uint8Array(1024).fill(7));
  assert.equal(await mb.receive(), null);
});

test("messages: over the limit is a NET_BAD_MESSAGE on either side; a stream cut mid-message too", async () => {
  const [a, b] = pipePair();
  const ma = createMessageStream(a, { maxMessageBytes: 8 });
  await assert.rejects(ma.send(new Uint8Array(9)), (e: unknown) => e instanceof NetError && e.code === "NET_BAD_MESSAGE");
  // A peer that ignores the limit: the receiver refuses the length before reading the body.
  a.write(Buffer.from([0, 0, 0, 9]));
  await assert.rejects(createMessageStream(b, { maxMessageBytes: 8 }).receive(), (e: unknown) => e instanceof NetError && e.code === "NET_BAD_MESSAGE" && /9-byte message; the limit is 8/.test(e.message));

  const [c, d] = pipePair();
  c.end(Buffer.from([0, 0, 0, 5, 1, 2]));
  await assert.rejects(createMessageStream(d, { maxMessageBytes: 8 }).receive(), (e: unknown) => e instanceof NetError && e.code === "NET_BAD_MESSAGE" && /ended inside a 5-byte message/.test(e.message));
});

test("messages: a 20 MB message streams with backpressure (the sender waits for a slow reader)", async () => {
  const [a, b] = pipePair();
  const big = new Uint8Array(20 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  const ma = createMessageStream(a, { maxMessageBytes: big.length });
  const mb = createMessageStream(b, { maxMessageBytes: big.length });
  let sent = false;
  const sending = ma.send(big).then(() => (sent = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sent, false, "nothing reads yet, so the send is held by backpressure");
  const got = await mb.receive();
  await sending;
  assert.ok(got && Buffer.from(got).equals(Buffer.from(big)));
});
