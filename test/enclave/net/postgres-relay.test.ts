/**
 * An enclave's PostgreSQL session through the host's byte relay: the enclave
 * (a forked process) runs pg over a socket from its network API, which does
 * PostgreSQL's SSLRequest and a TLS 1.3 handshake inside the enclave and
 * checks the server's certificate against the pin it was given. The host
 * records every byte it carried: the canary row, the user and the database
 * name never appear in them.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certificateSha256 } from "../../../src/enclave/net/connect.ts";
import { carriedContains, carriedTotal, framesContain, JobFailed, startTestEnclave, type TestEnclave } from "./harness.ts";
import { postgresRunner, selfSignedCertificate, startPostgres, type PostgresInstance } from "./postgres-instance.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;

let pg: PostgresInstance;
let enclave: TestEnclave;
const servers: Server[] = [];

before(async () => {
  if ("skip" in runner) return;
  pg = await startPostgres(runner);
  enclave = startTestEnclave();
});
after(async () => {
  servers.forEach((s) => s.close());
  await enclave?.close();
  pg?.stop();
});

const canary = () => `CANARY-row-${randomBytes(12).toString("hex")}`;
const job = (extra: Record<string, unknown>) => ({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, pinSha256: certificateSha256(pg.certPem), ...extra });

test("the enclave inserts and selects a canary row over pinned TLS; the host never carries it in the clear", { skip }, async () => {
  const secret = canary();
  const before = enclave.carried.length;
  const framesBefore = enclave.frames.length;
  const result = await enclave.run<{ selected: string[]; serverSeesTls: boolean; tlsVersion: string }>("postgres", job({ canary: secret }));
  assert.deepEqual(result.selected, [secret]);
  assert.equal(result.serverSeesTls, true);
  assert.equal(result.tlsVersion, "TLSv1.3");
  const carried = enclave.carried.slice(before);
  assert.ok(carriedTotal(carried, "to-destination") > 1000, "the session's bytes went through the relay");
  assert.ok(carried.every((c) => c.destination === `127.0.0.1:${pg.port}`));
  for (const plaintext of [secret, pg.user, pg.database, pg.password, "INSERT INTO secrets"]) {
    assert.equal(carriedContains(carried, plaintext), false, `${plaintext} crossed the host in the clear`);
    assert.equal(framesContain(enclave.frames.slice(framesBefore), plaintext), false, `${plaintext} is in a relay frame`);
  }
});

test("a wrong pin is refused with NET_PIN_MISMATCH before pg sends its startup message", { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "cloister-pin-"));
  try {
    const other = selfSignedCertificate(dir, "localhost");
    const before = enclave.carried.length;
    await assert.rejects(enclave.run("postgres", job({ canary: canary(), pinSha256: certificateSha256(other.certPem) })), (e: unknown) => {
      assert.ok(e instanceof JobFailed, String(e));
      assert.equal(e.error.name, "NetError");
      assert.equal(e.error.code, "NET_PIN_MISMATCH");
      assert.equal(e.error.details?.presented, certificateSha256(pg.certPem));
      return true;
    });
    // Only the SSLRequest and the TLS handshake went out: no startup message, no user name.
    assert.equal(carriedContains(enclave.carried.slice(before), pg.user), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TCP server that answers the first thing it reads with `answer` (a server that declines TLS, or stuffs bytes after 'S'). */
async function answering(answer: string): Promise<number> {
  const server = createServer((s) => s.once("data", () => s.write(answer)));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

test("a server that declines TLS, or sends bytes after its 'S', is refused with NET_STARTTLS_REFUSED", { skip }, async () => {
  const port = await answering("N");
  await assert.rejects(enclave.run("postgres", job({ canary: canary(), port })), (e: unknown) => {
    assert.ok(e instanceof JobFailed, String(e));
    assert.equal(e.error.code, "NET_STARTTLS_REFUSED");
    assert.match(e.error.message, /declined TLS/);
    return true;
  });
  // One write on loopback arrives as one chunk; were it split, the stray byte would break the TLS handshake instead.
  const stuffing = await answering("SX");
  await assert.rejects(enclave.run("postgres", job({ canary: canary(), port: stuffing })), (e: unknown) => {
    assert.ok(e instanceof JobFailed, String(e));
    assert.ok(e.error.code === "NET_STARTTLS_REFUSED" || e.error.code === "NET_TLS_FAILED", e.message);
    if (e.error.code === "NET_STARTTLS_REFUSED") assert.match(e.error.message, /2 unexpected byte/);
    return true;
  });
});
