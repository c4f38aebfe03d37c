/**
 * MySQL/MariaDB over pinned TLS from inside the enclave: a pipeline run whose
 * mysql source and destination name a certificate `pin`, through the relay to
 * a throwaway TLS-only MariaDB; the bytes the host carried hold no row value,
 * password or SQL; mysql2 sees its packets in order; a wrong pin and a server
 * without TLS are refused before any credential leaves the enclave.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2";
import { certificateSha256, createEnclaveNet } from "../../../src/enclave/net/connect.ts";
import { runPipeline } from "../../../src/enclave/pipeline/run-pipeline.ts";
import type { PipelineSpec } from "../../../src/protocol/pipeline-package.ts";
import { carriedContains, carriedTotal, JobFailed, startTestEnclave, wired, type TestEnclave } from "../net/harness.ts";
import { mariadbSkip, startMariadb, type MariadbInstance } from "../net/mariadb-instance.ts";
import { selfSignedCertificate } from "../net/postgres-instance.ts";

const skip = mariadbSkip();
let db: MariadbInstance;
let enclave: TestEnclave;
let url: string;
let pin: string;
const canary = `CANARY-my-${randomBytes(8).toString("hex")}`;

before(async () => {
  if (skip) return;
  db = await startMariadb({ tls: true });
  enclave = startTestEnclave();
  url = `mysql://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
  // Seeded by the data owner over its own unix socket.
  db.admin(`CREATE TABLE ${db.database}.orders (id BIGINT PRIMARY KEY, note TEXT, amount DECIMAL(10,2)); INSERT INTO ${db.database}.orders VALUES (1, 'a', 1.50), (2, '${canary}', 2.25), (3, 'c', 3.00)`);
  pin = certificateSha256(db.certPem!);
});
after(async () => {
  await enclave?.close();
  await db?.stop();
});

const jobError = (code: string) => (e: unknown) => {
  assert.ok(e instanceof JobFailed, String(e));
  assert.equal(e.error.code, code, e.message);
  return true;
};

test("a pipeline over pinned mysql endpoints runs through the relay with TLS in the enclave; a repeated run id writes nothing", { skip }, async () => {
  const spec: PipelineSpec = {
    name: "pinned-mysql",
    source: { type: "mysql", url, table: "orders", cursor: "id", pin },
    transform: { kind: "sql", sql: "SELECT id, note, amount * 2 AS doubled FROM source" },
    destination: { type: "mysql", url, table: "orders_doubled", mode: "append", pin },
    schedule: null,
  };
  const first = await enclave.run<{ read: number; written: number; resumed: boolean }>("pipelineRun", { spec, runId: "0xmysql-run-1" });
  assert.deepEqual(first, { read: 3, written: 3, resumed: false });
  const again = await enclave.run<{ read: number; written: number; resumed: boolean }>("pipelineRun", { spec, runId: "0xmysql-run-1" });
  assert.deepEqual(again, { read: 3, written: 3, resumed: true }, "the marker's record, nothing written");
  assert.equal(db.admin(`SELECT GROUP_CONCAT(CONCAT(id, ':', note, ':', CAST(doubled AS DECIMAL(10,2))) ORDER BY id) FROM ${db.database}.orders_doubled`).trim(), `1:a:3.00,2:${canary}:4.50,3:c:6.00`);
  assert.ok(carriedTotal(enclave.carried) > 0, "the relay carried the sessions");
  for (const plaintext of [canary, db.password, db.user, "orders_doubled", "SELECT"]) {
    assert.equal(carriedContains(enclave.carried, plaintext), false, `${plaintext} crossed the host in the clear`);
  }
  // The server's greeting names its auth plugin in the clear (the protocol's); the enclave's answer naming it went inside TLS.
  assert.equal(carriedContains(enclave.carried, "mysql_native_password"), true);
  assert.equal(carriedContains(enclave.carried.filter((c) => c.direction === "to-destination"), "mysql_native_password"), false);
});

test("mysql2 over the enclave's stream: a TLS 1.3 session to the server, every packet in order", { skip }, async () => {
  const w = wired();
  const warnings: string[] = [];
  const driver = mysql.createConnection({ ...createEnclaveNet({ channel: w.channel }).mysql({ host: db.host, port: db.port, pin: { kind: "certificate", sha256: pin } }), user: db.user, password: db.password, database: db.database });
  driver.on("warn", (e: Error) => warnings.push(e.message));
  const connection = driver.promise();
  try {
    const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
    assert.deepEqual(rows, [{ Variable_name: "Ssl_version", Value: "TLSv1.3" }], "the server sees a TLS session");
    const [more] = await connection.query("SELECT COUNT(*) AS n FROM orders");
    assert.deepEqual(more, [{ n: 3 }]);
    assert.deepEqual(warnings, []);
  } finally {
    await connection.end();
    w.close();
  }
});

test("a wrong pin is refused with NET_PIN_MISMATCH and neither user nor password leaves the enclave", { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "cloister-my-pin-"));
  try {
    const other = selfSignedCertificate(dir, "localhost");
    const before = enclave.carried.length;
    await assert.rejects(enclave.run("connector", { pinSha256: certificateSha256(other.certPem), source: { type: "mysql", url, table: "orders" } }), jobError("NET_PIN_MISMATCH"));
    for (const secret of [db.user, db.password]) assert.equal(carriedContains(enclave.carried.slice(before), secret), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pinned mysql endpoint on a server without TLS (the machine's MariaDB) is refused before the handshake response", { skip }, async () => {
  const before = enclave.carried.length;
  await assert.rejects(enclave.run("connector", { pinSha256: pin, source: { type: "mysql", url: "mysql://root:not-sent@127.0.0.1:3306/test", table: "t" } }), (e: unknown) => {
    jobError("NET_STARTTLS_REFUSED")(e);
    assert.match((e as Error).message, /does not offer TLS/);
    return true;
  });
  const sent = enclave.carried.slice(before).filter((c) => c.direction === "to-destination");
  assert.equal(carriedContains(enclave.carried.slice(before), "not-sent"), false);
  assert.equal(carriedContains(sent, "root"), false, "no handshake response was sent");
});

test("a pinned mysql endpoint without the enclave's network is refused, not opened in the clear", { skip }, async () => {
  const spec: PipelineSpec = { name: "no-net", source: { type: "mysql", url, table: "orders", pin }, transform: { kind: "copy" }, destination: { type: "mysql", url, table: "orders_copy", mode: "append", pin }, schedule: null };
  await assert.rejects(runPipeline(spec, { after: undefined, runId: "0xno-net", sealCursor: () => new Uint8Array(1) }), /needs the enclave's network/);
});
