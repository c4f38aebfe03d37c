/**
 * Delivery from inside the compute enclave, over TLS through its host's relay with the server certificate
 * pinned by the terms: to a PostgreSQL table (a throwaway SSL-only instance with a password, sealed to the
 * compute enclave) and to an HTTPS endpoint (JSON body). A certificate other than the pinned one, and a
 * table other than the approved one, are refused; the table's password crosses no host in the clear.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serialize } from "node:v8";
import pgLib from "pg";
import { readRuns } from "../../src/chain/actions/read-runs.ts";
import { certificateSha256 } from "../../src/enclave/net/connect.ts";
import { CollabRefusedError } from "../../src/sdk/collab/errors.ts";
import { postgresRunner, selfSignedCertificate, startPostgres, type PostgresInstance } from "../enclave/net/postgres-instance.ts";
import { created, exampleFile, load, run, startFixture, type CollabFixture } from "./fixture.ts";

const runner = postgresRunner();
const skip = "skip" in runner ? runner.skip : false;

let fx: CollabFixture;
let pg: PostgresInstance | undefined;
let https: Server | undefined;
let httpsPort = 0;
let httpsPin = "";
const bodies: string[] = [];
const certDir = mkdtempSync(join(tmpdir(), "cloister-cr-https-"));

before(async () => {
  fx = await startFixture(["retailer", "bank"]);
  if (!("skip" in runner)) pg = await startPostgres(runner);
  const cert = selfSignedCertificate(certDir, "localhost");
  httpsPin = certificateSha256(cert.certPem);
  https = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      bodies.push(body);
      res.writeHead(req.url === "/results" ? 201 : 404).end();
    });
  });
  await new Promise<void>((resolve) => https!.listen(0, "127.0.0.1", resolve));
  httpsPort = (https.address() as { port: number }).port;
});
after(async () => {
  await fx?.close();
  pg?.stop();
  await new Promise<void>((resolve) => (https ? https.close(() => resolve()) : resolve()));
  rmSync(certDir, { recursive: true, force: true });
});

const refused = (code: string) => (e: unknown) => {
  assert.ok(e instanceof CollabRefusedError, String(e));
  assert.equal(e.code, code, e.message);
  return true;
};

describe("clean room delivery from inside the compute enclave", () => {
  test("to a PostgreSQL table over pinned TLS: the rows land in the table, the password never crosses a host in the clear", { skip }, async () => {
    const url = `postgres://${pg!.user}:${pg!.password}@127.0.0.1:${pg!.port}/${pg!.database}`;
    const pin = certificateSha256(pg!.certPem);
    const made = await created(fx, load(fx, exampleFile((f) => (f.recipient = { postgres: url, table: "gold_spend", pin }))));
    assert.ok(!made.terms.recipient.includes(pg!.password), "the terms name the table without the password");
    const frames = fx.frames.length;
    const carried = fx.carried.length;
    const out = await run(fx, made);
    assert.equal(out.result, undefined, "the host side gets a receipt, not the rows");
    assert.match(out.deliveredTo, /^postgres:postgres:\/\/127\.0\.0\.1:\d+\/cloister_vault#gold_spend$/);
    const client = new pgLib.Client({ host: "127.0.0.1", port: pg!.port, user: pg!.user, password: pg!.password, database: pg!.database, ssl: { rejectUnauthorized: false } });
    await client.connect();
    const rows = (await client.query<{ category: string; customers: string }>("SELECT category, customers FROM gold_spend ORDER BY category")).rows;
    await client.end();
    assert.deepEqual(rows.map((r) => r.category), ["books", "electronics", "garden"]);
    const password = Buffer.from(pg!.password);
    for (const frame of fx.frames.slice(frames)) assert.equal(serialize(frame).indexOf(password), -1, "a gate frame carries the password");
    assert.equal(Buffer.concat(fx.carried.slice(carried).map((c) => c.bytes)).indexOf(password), -1, "the relay carried the password in the clear");
    assert.ok(fx.carried.slice(carried).some((c) => c.destination.endsWith(`:${pg!.port}`)), "the delivery went through the compute host's relay");
  });

  test("a PostgreSQL server whose certificate is not the pinned one is refused before anything is written; another table than the approved one too", { skip }, async () => {
    const url = `postgres://${pg!.user}:${pg!.password}@127.0.0.1:${pg!.port}/${pg!.database}`;
    const wrong = "ab".repeat(32);
    const made = await created(fx, load(fx, exampleFile((f) => (f.recipient = { postgres: url, table: "never_written", pin: wrong }))));
    await assert.rejects(run(fx, made), refused("NET_PIN_MISMATCH"));
    assert.equal((await readRuns(fx.c.net.reader, fx.c.net.contract, made.collaborationId)).length, 0);
    const good = await created(fx, load(fx, exampleFile((f) => (f.recipient = { postgres: url, table: "approved_table", pin: certificateSha256(pg!.certPem) }))));
    await assert.rejects(run(fx, good, { tamper: { recipientUrl: `postgres://${pg!.user}:${pg!.password}@127.0.0.1:${pg!.port}/postgres` } }), refused("COLLAB_RECIPIENT_PIN_MISMATCH"));
  });

  test("to an HTTPS endpoint over pinned TLS: the JSON body carries the rows; another certificate is refused", async () => {
    const made = await created(fx, load(fx, exampleFile((f) => (f.recipient = { https: `https://127.0.0.1:${httpsPort}/results`, pin: httpsPin }))));
    const before = bodies.length;
    const out = await run(fx, made);
    assert.equal(out.result, undefined);
    assert.equal(bodies.length, before + 1);
    const body = JSON.parse(bodies.at(-1)!) as { columns: string[]; rows: unknown[][]; suppressed: number };
    assert.deepEqual(body.columns, ["category", "customers", "total"]);
    assert.deepEqual(body.rows.map((r) => r[0]), ["books", "electronics", "garden"]);
    assert.equal(body.suppressed, 1);

    const wrongPin = await created(fx, load(fx, exampleFile((f) => (f.recipient = { https: `https://127.0.0.1:${httpsPort}/results`, pin: "cd".repeat(32) }))));
    await assert.rejects(run(fx, wrongPin), refused("NET_PIN_MISMATCH"));
    assert.equal(bodies.length, before + 1, "nothing was sent to a server with another certificate");
    const notFound = await created(fx, load(fx, exampleFile((f) => (f.recipient = { https: `https://127.0.0.1:${httpsPort}/elsewhere`, pin: httpsPin }))));
    await assert.rejects(run(fx, notFound), refused("COLLAB_DELIVERY_FAILED"));
  });
});
