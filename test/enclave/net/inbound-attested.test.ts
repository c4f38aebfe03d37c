/**
 * Two enclaves talk: two real forked enclave processes, each behind its own
 * host relay. One listens (the host opens the TCP port), the other connects;
 * the TLS 1.3 session is mutual attested TLS run inside the two enclaves, so
 * both hosts carry only records. Canaries and a ~20 MB message go both ways;
 * peers with the wrong measurement are refused on either side.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { carriedContains, carriedTotal, framesContain, JobFailed, startTestEnclave, type TestEnclave } from "./harness.ts";
import type { RelayListening } from "../../../src/host/net-relay.ts";

const PKI_SEED = "6f".repeat(32);
const SERVER = "c3".repeat(32);
const CLIENT = "d4".repeat(32);
const ROGUE = "0e".repeat(32);
const BIG = 20 * 1024 * 1024;

const announced: RelayListening[] = [];
const server = startTestEnclave({ inbound: { onListening: (l) => announced.push(l) } });
const client = startTestEnclave({ inbound: {} });
after(async () => {
  await server.close();
  await client.close();
});

const canary = (tag: string) => `CANARY-${tag}-${randomBytes(12).toString("hex")}`;

interface Served {
  served: { peerMeasurement: string; received: string[]; sent: string[]; error?: string }[];
  refused: string[];
}

async function listen(on: TestEnclave, measurement: string, peerMeasurement: string, secret: string) {
  return on.run<{ id: number; address: { host: string; port: number } }>("listen", { pkiSeed: PKI_SEED, measurement, peerMeasurement, canary: secret, bigBytes: BIG });
}

function exchange(from: TestEnclave, address: { host: string; port: number }, measurement: string, peerMeasurement: string, secret: string) {
  return from.run<{ peerMeasurement: string; sent: string[]; received: string[]; echoedDigest: string; protocol: string }>("exchange", {
    ...address, pkiSeed: PKI_SEED, measurement, peerMeasurement, canary: secret, bigBytes: BIG,
  });
}

async function settled(id: number, count: number): Promise<Served> {
  for (;;) {
    const s = await server.run<Served>("served", { id });
    if (s.served.length + s.refused.length >= count && s.served.every((x) => x.sent.length > 0 || x.error)) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("an enclave accepts another enclave's mutual attested TLS through two relays; 20 MB both ways, canaries never carried", async () => {
  const toServer = canary("to-listener");
  const toClient = canary("to-connector");
  const carriedBefore = [server.carried.length, client.carried.length];
  const framesBefore = [server.frames.length, client.frames.length];
  const { id, address } = await listen(server, SERVER, CLIENT, toClient);
  // The host learned the listener's address too, and it is the one the enclave got.
  assert.equal(address.host, "127.0.0.1");
  assert.ok(announced.some((l) => l.port === address.port && l.host === address.host));

  const result = await exchange(client, address, CLIENT, SERVER, toServer);
  const { served } = await settled(id, 1);
  assert.equal(result.protocol, "TLSv1.3");
  assert.equal(result.peerMeasurement, SERVER, "the connector verified the listener's evidence");
  assert.equal(served.length, 1);
  const s = served[0]!;
  assert.equal(s.error, undefined);
  assert.equal(s.peerMeasurement, CLIENT, "the listener verified the connector's evidence");
  // Every message arrived whole in both directions.
  assert.deepEqual(s.received, result.sent);
  assert.deepEqual(result.received, s.sent);
  assert.equal(result.echoedDigest, result.sent[1]);

  const serverCarried = server.carried.slice(carriedBefore[0]);
  const clientCarried = client.carried.slice(carriedBefore[1]);
  // Both hosts carried the whole session (inbound on the listener's host, outbound on the connector's).
  for (const carried of [serverCarried, clientCarried]) {
    assert.ok(carriedTotal(carried, "to-enclave") > BIG);
    assert.ok(carriedTotal(carried, "to-destination") > BIG);
  }
  assert.ok(serverCarried.every((c) => c.stream < 0), "the listener's host carried the inbound stream under a negative id");
  assert.ok(clientCarried.every((c) => c.stream >= 0));
  for (const secret of [toServer, toClient]) {
    assert.equal(carriedContains(serverCarried, secret), false);
    assert.equal(carriedContains(clientCarried, secret), false);
    assert.equal(framesContain(server.frames.slice(framesBefore[0]), secret), false);
    assert.equal(framesContain(client.frames.slice(framesBefore[1]), secret), false);
  }
  // The frames on the listener's side are the inbound ones.
  const nets = new Set(server.frames.slice(framesBefore[0]).map((f) => (f as { net: string }).net));
  for (const n of ["listen", "listening", "accepted", "data"]) assert.ok(nets.has(n), `expected a ${n} frame`);
  await server.run("unlisten", { id });
});

test("the listener drops a client with another measurement before its handler sees it", async () => {
  const secret = canary("rogue-client");
  const { id, address } = await listen(server, SERVER, CLIENT, canary("unsent"));
  const before = server.carried.length;
  // The rogue client accepts the listener (it pins SERVER), but presents ROGUE evidence itself.
  await assert.rejects(exchange(client, address, ROGUE, SERVER, secret));
  const s = await settled(id, 1);
  assert.equal(s.served.length, 0, "the handler never saw the rogue client");
  assert.deepEqual(s.refused, ["NET_PEER_REFUSED"]);
  assert.equal(carriedContains(server.carried.slice(before), secret), false);
  await server.run("unlisten", { id });
});

test("the connector refuses a listener with another measurement", async () => {
  const secret = canary("to-rogue");
  const { id, address } = await listen(server, ROGUE, CLIENT, canary("rogue-server"));
  const before = client.carried.length;
  await assert.rejects(exchange(client, address, CLIENT, SERVER, secret), (e: unknown) => {
    assert.ok(e instanceof JobFailed);
    assert.equal(e.error.code, "NET_PEER_REFUSED");
    assert.equal(e.error.causeCode, "ATLS_POLICY_REFUSED");
    return true;
  });
  const s = await server.run<Served>("served", { id });
  assert.ok(s.served.every((x) => x.received.length === 0), "no message reached the rogue listener");
  assert.equal(carriedContains(client.carried.slice(before), secret), false);
  await server.run("unlisten", { id });
});

test("listen fails with NET_LISTEN_FAILED when the host offers no inbound connections", async () => {
  const closedHost = startTestEnclave();
  try {
    await assert.rejects(listen(closedHost, SERVER, CLIENT, "x"), (e: unknown) => {
      assert.ok(e instanceof JobFailed);
      assert.equal(e.error.code, "NET_LISTEN_FAILED");
      assert.match(e.error.message, /accepts no inbound connections/);
      return true;
    });
  } finally {
    await closedHost.close();
  }
});
