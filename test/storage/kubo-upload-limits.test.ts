/**
 * The embedded Kubo RPC server under uploads meant to exhaust its memory: an add buffers its whole body,
 * so the server caps each request and the bytes of all uploads in flight together. Over either cap a
 * request is refused at once with a reason (413 or 503), not buffered, and small adds still go through.
 */
import assert from "node:assert/strict";
import { request, type ClientRequest, type IncomingMessage } from "node:http";
import { test, type TestContext } from "node:test";
import { multipartBody } from "../../src/storage/multipart.ts";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { tempDir } from "./helpers.ts";

const MiB = 1024 * 1024;
const ADD_PATH = "/api/v0/add?cid-version=1&raw-leaves=true&chunker=size-262144&hash=sha2-256";

async function limitedNode(t: TestContext) {
  const helia = await openHeliaStore(await tempDir(t));
  const server = await startKuboRpcServer({ store: helia, maxUploadBytes: 4 * MiB, maxUploadBytesInFlight: 6 * MiB });
  t.after(async () => {
    await server.close();
    await helia.close();
  });
  return server;
}

interface OpenUpload {
  /** Sends the rest of the body; resolves with the answer's status and text. */
  finish(): Promise<{ status: number; body: string }>;
  /** The answer, which may come before the body is complete (a refusal). */
  response: Promise<{ status: number; body: string }>;
  request: ClientRequest;
}

/** Starts an add of a `size`-byte file and sends only its first byte of content until finish(). */
function startUpload(port: number, size: number, headers: { chunked?: boolean } = {}): OpenUpload {
  const body = multipartBody([{ name: "big", bytes: new Uint8Array(size).fill(7) }]);
  const whole = Buffer.concat(body.chunks);
  const req = request({
    host: "127.0.0.1",
    port,
    method: "POST",
    path: ADD_PATH,
    headers: { "content-type": body.contentType, ...(headers.chunked ? { "transfer-encoding": "chunked" } : { "content-length": whole.byteLength }) },
  });
  req.on("error", () => {});
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("close", () => setTimeout(() => reject(new Error("the connection closed without an answer")), 100));
  });
  req.write(whole.subarray(0, 200));
  return {
    request: req,
    response,
    finish: () => {
      req.end(whole.subarray(200));
      return response;
    },
  };
}

test("an add over the per-request cap gets 413 before its body is read", async (t) => {
  const server = await limitedNode(t);
  const big = startUpload(server.port, 5 * MiB);
  const refused = await big.response;
  assert.equal(refused.status, 413);
  assert.match(refused.body, /larger than 4194304 bytes/);
  big.request.destroy();
  // The same over chunked encoding, where the size shows only while reading.
  const chunked = startUpload(server.port, 5 * MiB, { chunked: true });
  const answer = await chunked.finish().catch(() => chunked.response);
  assert.equal(answer.status, 413);
});

test("concurrent large adds over the in-flight budget are refused with 503 while a small one goes through", async (t) => {
  const server = await limitedNode(t);
  const first = startUpload(server.port, 3.5 * MiB);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const second = startUpload(server.port, 3.5 * MiB);
  const refused = await second.response;
  assert.equal(refused.status, 503);
  assert.match(refused.body, /uploads in flight/);
  second.request.destroy();

  const kubo = openKuboStore(server.url);
  t.after(() => kubo.close());
  const small = await kubo.put(new TextEncoder().encode("small blobs still go through"));
  assert.match(small, /^bafk/);

  const done = await first.finish();
  assert.equal(done.status, 200, done.body);
  // With the first upload done, its bytes are free again.
  const third = startUpload(server.port, 3.5 * MiB);
  assert.equal((await third.finish()).status, 200);
});
