/**
 * An enclave's own attested TLS session through the host's byte relay: the
 * enclave (a forked process) connects to an attested server over mutual
 * TLS 1.3; the host relays TCP bytes and records all of them. Canaries sent
 * inside the session, both ways, never appear in what the host carried.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Server } from "node:net";
import { createAttestedCertificate, type AttestedPeer, type EvidenceVerifier } from "../../../src/attestation/atls/certificate.ts";
import { createAttestedServer } from "../../../src/attestation/atls/tls.ts";
import { productionPolicy } from "../../../src/attestation/policy.ts";
import { createSimPki, simRootDer } from "../../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../../src/attestation/sim/provider.ts";
import { verifyEvidence } from "../../../src/attestation/verify.ts";
import { carriedContains, carriedTotal, framesContain, JobFailed, startTestEnclave } from "./harness.ts";

const PKI_SEED = "5e".repeat(32);
const ENCLAVE = "a1".repeat(32);
const SERVER = "b2".repeat(32);
const ROGUE = "0e".repeat(32);
const pki = await createSimPki({ seed: PKI_SEED });
const policy = { ...productionPolicy(), allowSimulation: true, simulatedRoots: [simRootDer(pki)], measurements: [ENCLAVE] };
const verify: EvidenceVerifier = (evidence, expectedReportData) => verifyEvidence(evidence, { policy, expectedReportData });

const servers: Server[] = [];
const enclave = startTestEnclave();
after(async () => {
  servers.forEach((s) => s.close());
  await enclave.close();
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** An attested server (measurement `mr`) that answers each verified client with `reply` after reading its message. */
async function attestedServer(mr: string, reply: string) {
  const got: { peer: AttestedPeer; message: string }[] = [];
  const port = await listen(
    createAttestedServer({
      certificate: await createAttestedCertificate({ provider: new SimulatedProvider({ pki, mrEnclave: mr }) }),
      verify,
      onPeer: (socket, peer) => {
        let message = "";
        socket.on("data", (d) => (message += d));
        socket.on("end", () => {
          got.push({ peer, message });
          socket.end(reply);
        });
      },
    }),
  );
  return { port, got };
}

const canary = (tag: string) => `CANARY-${tag}-${randomBytes(12).toString("hex")}`;

test("control: bytes sent without TLS through the relay are seen by the recorder", async () => {
  const secret = canary("plain");
  const port = await listen(createServer((s) => s.on("data", () => s.end("ok"))));
  const before = enclave.carried.length;
  const { reply } = await enclave.run<{ reply: string }>("raw", { host: "127.0.0.1", port, canary: secret });
  assert.equal(reply, "ok");
  assert.ok(carriedContains(enclave.carried.slice(before), secret), "the recorder must see plaintext, or the other tests prove nothing");
});

test("the enclave's attested TLS 1.3 session crosses the relay; canaries both ways stay out of the carried bytes", async () => {
  const toServer = canary("to-server");
  const toEnclave = canary("to-enclave");
  const server = await attestedServer(SERVER, toEnclave);
  const before = enclave.carried.length;
  const framesBefore = enclave.frames.length;
  const result = await enclave.run<{ reply: string; peerMeasurement: string; protocol: string }>("attested", {
    host: "127.0.0.1", port: server.port, pkiSeed: PKI_SEED, measurement: ENCLAVE, peerMeasurement: SERVER, canary: toServer,
  });
  // The session worked end to end, and each side verified the other's evidence.
  assert.equal(result.reply, toEnclave);
  assert.equal(result.protocol, "TLSv1.3");
  assert.equal(result.peerMeasurement, SERVER);
  assert.equal(server.got.length, 1);
  assert.equal(server.got[0]!.message, toServer);
  assert.equal(server.got[0]!.peer.claims.measurement, ENCLAVE);
  // And it went through the relay: the host carried the handshake and records, in both directions ...
  const carried = enclave.carried.slice(before);
  assert.ok(carriedTotal(carried, "to-destination") > toServer.length);
  assert.ok(carriedTotal(carried, "to-enclave") > toEnclave.length);
  assert.ok(carried.every((c) => c.destination === `127.0.0.1:${server.port}`));
  // ... without ever seeing either canary.
  assert.equal(carriedContains(carried, toServer), false);
  assert.equal(carriedContains(carried, toEnclave), false);
  assert.equal(framesContain(enclave.frames.slice(framesBefore), toServer), false);
  assert.equal(framesContain(enclave.frames.slice(framesBefore), toEnclave), false);
});

test("a server with another measurement is refused inside the enclave, before any application byte is sent", async () => {
  const secret = canary("rogue");
  const server = await attestedServer(ROGUE, "never");
  const before = enclave.carried.length;
  await assert.rejects(
    enclave.run("attested", { host: "127.0.0.1", port: server.port, pkiSeed: PKI_SEED, measurement: ENCLAVE, peerMeasurement: SERVER, canary: secret }),
    (e: unknown) => {
      assert.ok(e instanceof JobFailed);
      assert.equal(e.error.name, "NetError");
      assert.equal(e.error.code, "NET_PEER_REFUSED");
      assert.equal(e.error.causeCode, "ATLS_POLICY_REFUSED");
      return true;
    },
  );
  assert.ok(server.got.every((g) => g.message === ""), "the server must receive nothing from an enclave that refused it");
  assert.equal(carriedContains(enclave.carried.slice(before), secret), false);
});

test("a destination the host will not relay to fails fast with NET_CONNECT_FAILED", async () => {
  const picky = startTestEnclave({ allow: () => false });
  try {
    await assert.rejects(
      picky.run("raw", { host: "127.0.0.1", port: 9, canary: "x" }),
      (e: unknown) => e instanceof JobFailed && e.error.code === "NET_CONNECT_FAILED" && /does not relay to 127\.0\.0\.1:9/.test(e.error.message),
    );
  } finally {
    await picky.close();
  }
});
