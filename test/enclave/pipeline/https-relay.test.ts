/**
 * A pipeline's https source and destination through the enclave's relay: TLS
 * terminates in the (test) enclave, the server's self-signed certificate is
 * pinned, and the bytes the host carried hold neither the rows nor the
 * request; another certificate than the pin is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certificateSha256 } from "../../../src/enclave/net/connect.ts";
import type { JobFailed} from "../net/harness.ts";
import { carriedContains, framesContain, startTestEnclave, type TestEnclave } from "../net/harness.ts";
import { selfSignedCertificate } from "../net/postgres-instance.ts";

const canary = `https-canary-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), "cloister-pl-relay-"));
const { certPem, keyPem } = selfSignedCertificate(dir, "localhost");
let server: Server;
let base = "";
let enclave: TestEnclave;
const received: string[] = [];

test.before(async () => {
  server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += String(c)));
    req.on("end", () => {
      if (req.method === "POST") {
        received.push(body);
        res.writeHead(200).end("{}");
      } else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([{ id: 1, secret: canary }, { id: 2, secret: "b" }]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  enclave = startTestEnclave();
});
test.after(async () => {
  await enclave.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test("https source and destination through the relay: pinned TLS inside the enclave, no plaintext in what the host carried", async () => {
  const r = await enclave.run<{ rows: string[][]; written: number }>("https", { url: `${base}/rows`, pin: certificateSha256(certPem), postUrl: `${base}/in` });
  assert.deepEqual(r.rows, [["1", canary], ["2", "b"]]);
  assert.equal(r.written, 2);
  assert.match(received.at(-1)!, new RegExp(canary), "the server got the rows");
  assert.ok(enclave.carried.length > 0, "the bytes went through the host's relay");
  assert.equal(carriedContains(enclave.carried, canary), false);
  assert.equal(carriedContains(enclave.carried, "/rows"), false, "nor the request line");
  assert.equal(framesContain(enclave.frames, canary), false);
});

test("another certificate than the pin is refused inside the enclave", async () => {
  await assert.rejects(enclave.run("https", { url: `${base}/rows`, pin: "ab".repeat(32), postUrl: `${base}/in` }), (e: JobFailed) => /pinned|PIN_MISMATCH|certificate/.test(e.message));
});
