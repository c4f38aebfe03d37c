/**
 * The postgres connector inside an enclave process: reads and writes go
 * through the host's byte relay with TLS inside the enclave and the server
 * certificate pinned. The host carries no canary row value and no password
 * in the clear, and a wrong pin stops the read before any credential leaves.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pgLib from "pg";
import { certificateSha256 } from "../../../src/enclave/net/connect.ts";
import { carriedContains, framesContain, JobFailed, startTestEnclave, type TestEnclave } from "../net/harness.ts";
import { postgresRunner, selfSignedCertificate, startPostgres, type PostgresInstance } from "../net/postgres-instance.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;
let pg: PostgresInstance;
let enclave: TestEnclave;
let url: string;
const canary = `CANARY-conn-${randomBytes(8).toString("hex")}`;

before(async () => {
  if ("skip" in runner) return;
  pg = await startPostgres(runner);
  enclave = startTestEnclave();
  url = `postgres://${encodeURIComponent(pg.user)}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${pg.database}`;
  // Seeded from outside the enclave (the data owner's own system), over TLS.
  const admin = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: { rejectUnauthorized: false } });
  await admin.connect();
  await admin.query("CREATE TABLE cards (customer_id bigint PRIMARY KEY, tier text)");
  await admin.query("INSERT INTO cards VALUES (1, 'gold'), (2, $1), (3, 'gold')", [canary]);
  await admin.end();
});
after(async () => {
  await enclave?.close();
  pg?.stop();
});

test("postgres connector in the enclave: a pinned read and write over the relay; no row value or password crosses the host in the clear", { skip }, async () => {
  const before = enclave.carried.length;
  const framesBefore = enclave.frames.length;
  const result = await enclave.run<{ rowCount: number; digest: string; rows: string[][]; written: number }>("connector", {
    pinSha256: certificateSha256(pg.certPem),
    source: { type: "postgres", url, query: "SELECT * FROM cards ORDER BY customer_id", cursor: "customer_id" },
    destination: { type: "postgres", url, table: "cards_copy", mode: "upsert", key: ["customer_id"] },
  });
  assert.equal(result.rowCount, 3);
  assert.deepEqual(result.rows[1], ["2", canary]);
  assert.equal(result.written, 3);
  const carried = enclave.carried.slice(before);
  for (const plaintext of [canary, pg.password, "cards_copy", "SELECT"]) {
    assert.equal(carriedContains(carried, plaintext), false, `${plaintext} crossed the host in the clear`);
    assert.equal(framesContain(enclave.frames.slice(framesBefore), plaintext), false, `${plaintext} is in a relay frame`);
  }
});

test("a wrong pin is refused with NET_PIN_MISMATCH and the password never leaves the enclave", { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "cloister-conn-pin-"));
  try {
    const other = selfSignedCertificate(dir, "localhost");
    const before = enclave.carried.length;
    await assert.rejects(enclave.run("connector", { pinSha256: certificateSha256(other.certPem), source: { type: "postgres", url, table: "cards" } }), (e: unknown) => {
      assert.ok(e instanceof JobFailed, String(e));
      assert.equal(e.error.code, "NET_PIN_MISMATCH");
      assert.ok(!e.message.includes(pg.password));
      return true;
    });
    assert.equal(carriedContains(enclave.carried.slice(before), pg.user), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("nats over the enclave network is refused rather than opened on a socket of its own", { skip }, async () => {
  await assert.rejects(enclave.run("connector", { pinSha256: certificateSha256(pg.certPem), source: { type: "nats", url: "nats://127.0.0.1:4222", stream: "orders" } }), (e: unknown) => {
    assert.ok(e instanceof JobFailed, String(e));
    assert.equal(e.error.code, "CONNECTOR_BAD_DESCRIPTOR");
    assert.match(e.message, /not built yet/);
    return true;
  });
});
