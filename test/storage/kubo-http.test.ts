/**
 * The Kubo RPC client against servers that answer as a real Kubo node does
 * where Cloister's embedded node answers otherwise: streamed error trailers,
 * error lines in NDJSON, text error bodies, non-streamed pin/ls.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { storageError } from "./helpers.ts";

interface Seen {
  path: string;
  query: URLSearchParams;
  contentType: string;
  body: Buffer;
}

/** A server answering every request with `answer`; records the requests and counts connections. */
async function fakeKubo(
  t: TestContext,
  answer: (seen: Seen, res: ServerResponse) => void,
): Promise<{ url: string; requests: Seen[]; connections: () => number; open: () => Promise<number> }> {
  const requests: Seen[] = [];
  let connections = 0;
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const url = new URL(req.url ?? "/", "http://localhost");
    const seen = { path: url.pathname, query: url.searchParams, contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks) };
    requests.push(seen);
    answer(seen, res);
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const open = (): Promise<number> => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, connections: () => connections, open };
}

function kuboError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ Message: message, Code: 0, Type: "error" }));
}

test("add sends Cloister's import profile as Kubo options, one multipart file part per blob", async (t) => {
  const blobs = [randomBytes(40), randomBytes(50)];
  const cids = await Promise.all(blobs.map(async (bytes) => (await cidOfBytes(bytes)).toString()));
  const node = await fakeKubo(t, (seen, res) => {
    res.writeHead(200, { "content-type": "application/json", "x-chunked-output": "1" });
    const names = [...seen.body.toString("latin1").matchAll(/filename="([^"]*)"/g)].map((m) => m[1]);
    res.end(names.map((name, i) => `${JSON.stringify({ Name: name === "" ? cids[0] : name, Hash: cids[i], Size: "1" })}\n`).join(""));
  });
  const kubo = openKuboStore(node.url);
  t.after(() => kubo.close());
  assert.equal(await kubo.put(blobs[0] ?? new Uint8Array()), cids[0]);
  assert.deepEqual(await kubo.putMany(blobs), cids);
  for (const seen of node.requests) {
    assert.equal(seen.path, "/api/v0/add");
    for (const [name, value] of Object.entries({ "cid-version": "1", "raw-leaves": "true", chunker: "size-262144", hash: "sha2-256", pin: "true" })) {
      assert.equal(seen.query.get(name), value, name);
    }
    const boundary = /boundary=(.+)$/.exec(seen.contentType)?.[1];
    assert.ok(seen.contentType.startsWith("multipart/form-data") && boundary !== undefined);
    assert.ok(seen.body.toString("latin1").endsWith(`\r\n--${boundary}--\r\n`));
  }
  const batch = node.requests[1]?.body ?? Buffer.alloc(0);
  assert.ok(batch.includes(blobs[0] ?? "") && batch.includes(blobs[1] ?? ""), "both blobs in the one body");
  assert.deepEqual(
    [...batch.toString("latin1").matchAll(/name="([^"]*)"; filename="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    [
      ["file", "0"],
      ["file-1", "1"],
    ],
  );
});

test("requests share one kept-alive connection", async (t) => {
  const cid = (await cidOfBytes(new Uint8Array([1]))).toString();
  const node = await fakeKubo(t, (_seen, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(`${JSON.stringify({ Cid: cid, Type: "recursive" })}\n`);
  });
  const kubo = openKuboStore(node.url);
  t.after(() => kubo.close());
  for (let i = 0; i < 5; i++) assert.equal(await kubo.has(cid), true);
  assert.equal(node.connections(), 1, "one connection for five requests");
});

test("a request on a kept-alive connection the node has just closed is sent again on a new one", async (t) => {
  const cid = (await cidOfBytes(new Uint8Array([1]))).toString();
  const served = new WeakMap<object, number>();
  // Each connection serves one request and is then dropped without notice,
  // as a node closing an idle connection just as the next request arrives.
  const node = await fakeKubo(t, (_seen, res) => {
    const socket = res.socket ?? {};
    const count = (served.get(socket) ?? 0) + 1;
    served.set(socket, count);
    if (count > 1) {
      res.socket?.destroy();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(`${JSON.stringify({ Cid: cid, Type: "recursive" })}\n`);
  });
  const kubo = openKuboStore(node.url);
  t.after(() => kubo.close());
  for (let i = 0; i < 3; i++) assert.equal(await kubo.has(cid), true, `request ${i}`);
  assert.equal(node.requests.length, 5, "two requests were sent twice");
  assert.equal(node.connections(), 3);
});

test("a get cut short by Kubo's X-Stream-Error trailer fails with the node's message, never returns a short blob", async (t) => {
  const bytes = randomBytes(1000);
  const cid = (await cidOfBytes(bytes)).toString();
  let trailer = "";
  const node = await fakeKubo(t, (_seen, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-stream-output": "1", trailer: "X-Stream-Error" });
    res.write(bytes.subarray(0, 500));
    res.addTrailers({ "X-Stream-Error": trailer });
    res.end();
  });
  const kubo = openKuboStore(node.url, { offline: true });
  t.after(() => kubo.close());
  trailer = "failed to fetch block: context deadline exceeded";
  await assert.rejects(kubo.get(cid), storageError("STORAGE_FAILED", "context deadline exceeded"));
  trailer = `block was not found locally (offline): ipld: could not find ${cid}`;
  await assert.rejects(kubo.get(cid), storageError("BLOB_NOT_FOUND", cid));
  assert.equal(node.requests.at(-1)?.query.get("offline"), "true", "the offline flag is sent with cat");
  assert.equal(node.requests.at(-1)?.query.get("arg"), cid);
});

test("Kubo's error answers map to typed errors: JSON and text bodies, error lines in NDJSON", async (t) => {
  const bytes = randomBytes(64);
  const cid = (await cidOfBytes(bytes)).toString();
  let respond: (res: ServerResponse) => void = () => {};
  const node = await fakeKubo(t, (_seen, res) => respond(res));
  const kubo = openKuboStore(node.url);
  t.after(() => kubo.close());

  respond = (res) => kuboError(res, 500, `block was not found locally (offline): ipld: could not find ${cid}`);
  await assert.rejects(kubo.get(cid), storageError("BLOB_NOT_FOUND", node.url));
  respond = (res) => kuboError(res, 500, `path '${cid}' is not pinned`);
  assert.equal(await kubo.has(cid), false);
  respond = (res) => kuboError(res, 500, "BLOB_TOO_LARGE: Blob is larger than allowed.");
  await assert.rejects(kubo.get(cid), storageError("BLOB_TOO_LARGE", "larger than allowed"));
  respond = (res) => {
    res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
    res.end("failed to open repo: disk full\n");
  };
  await assert.rejects(kubo.put(bytes), storageError("STORAGE_FAILED", "failed to store a blob: failed to open repo: disk full"));
  respond = (res) => {
    res.writeHead(200, { "content-type": "application/json", "x-chunked-output": "1" });
    res.end(`${JSON.stringify({ Message: "add: write failed: no space left on device", Code: 0, Type: "error" })}\n`);
  };
  await assert.rejects(kubo.putMany([bytes, bytes]), storageError("STORAGE_FAILED", "no space left on device"));
  respond = (res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("<html>not an IPFS node</html>\n");
  };
  await assert.rejects(kubo.put(bytes), storageError("STORAGE_FAILED", "not JSON"));
  respond = (res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ Keys: { [cid]: { Type: "recursive" } } }));
  };
  assert.equal(await kubo.has(cid), true, "a non-streamed pin/ls answer");
});

test("a node that drops the connection gives STORAGE_UNREACHABLE, and an aborted get rejects with AbortError", async (t) => {
  const node = await fakeKubo(t, (_seen, res) => res.socket?.destroy());
  const kubo = openKuboStore(node.url);
  t.after(() => kubo.close());
  const cid = (await cidOfBytes(new Uint8Array([7]))).toString();
  await assert.rejects(kubo.put(new Uint8Array([7])), storageError("STORAGE_UNREACHABLE", node.url));
  await assert.rejects(kubo.get(cid), storageError("STORAGE_UNREACHABLE", "Cannot reach"));

  const stalled = await fakeKubo(t, (_seen, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("partial");
  });
  const slow = openKuboStore(stalled.url);
  t.after(() => slow.close());
  const abort = new AbortController();
  const reading = slow.get(cid, { signal: abort.signal });
  while (stalled.requests.length === 0) await sleep(5);
  abort.abort();
  await assert.rejects(reading, { name: "AbortError" });
  await assert.rejects(slow.get(cid, { signal: AbortSignal.abort() }), { name: "AbortError" });
});

test("close lets a request under way finish, then drops the store's connections and refuses further use", async (t) => {
  const blob = randomBytes(100);
  const cid = (await cidOfBytes(blob)).toString();
  const node = await fakeKubo(t, (seen, res) => {
    if (seen.path.endsWith("/cat")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write(blob.subarray(0, 50));
      setTimeout(() => res.end(blob.subarray(50)), 50);
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end("");
  });
  const kubo = openKuboStore(node.url);
  assert.equal(await kubo.has(cid), false);
  assert.equal(await node.open(), 1);
  const reading = kubo.get(cid);
  while (node.requests.length < 2) await sleep(5);
  await kubo.close();
  assert.deepEqual(await reading, new Uint8Array(blob));
  for (let i = 0; i < 50 && (await node.open()) > 0; i++) await sleep(10);
  assert.equal(await node.open(), 0, "no connection left open");
  await assert.rejects(kubo.put(new Uint8Array([1])), storageError("STORAGE_FAILED", "closed"));
});
