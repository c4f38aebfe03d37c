import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { CHUNK_SIZE, cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { countingNode, storageError, tempDir } from "./helpers.ts";

test("putMany through the embedded node is one request and gives put's and Helia's CIDs in input order", async (t) => {
  const { url, addRequests } = await countingNode(t);
  const kubo = openKuboStore(url);
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  const blobs = [
    new TextEncoder().encode("hello\n"),
    randomBytes(200),
    randomBytes(3 * CHUNK_SIZE + 5),
    new Uint8Array(),
    randomBytes(200),
    new TextEncoder().encode("hello\n"),
  ];

  const cids = await kubo.putMany(blobs);
  assert.equal(addRequests(), 1, "one add request for every blob");
  assert.equal(cids.length, blobs.length);
  assert.equal(cids[0], "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am");
  assert.equal(cids[5], cids[0], "a repeated blob gets the same CID");
  assert.deepEqual(cids, await helia.putMany(blobs), "Helia's putMany gives the same CIDs");
  for (const [i, bytes] of blobs.entries()) {
    assert.equal(cids[i], (await cidOfBytes(bytes)).toString(), `blob ${i}`);
    assert.equal(cids[i], await kubo.put(bytes), `put of blob ${i}`);
    assert.equal(cids[i], await helia.put(bytes), `Helia put of blob ${i}`);
    assert.deepEqual(await kubo.get(cids[i] ?? ""), new Uint8Array(bytes), `blob ${i} reads back`);
    assert.equal(await kubo.has(cids[i] ?? ""), true, `blob ${i} is pinned`);
  }
});

test("putMany of no blobs returns no CIDs without a request", async (t) => {
  const { url, addRequests } = await countingNode(t);
  const kubo = openKuboStore(url);
  assert.deepEqual(await kubo.putMany([]), []);
  assert.equal(addRequests(), 0);
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  assert.deepEqual(await helia.putMany([]), []);
});

test("the embedded node answers a multi-file add with one line per part, in part order, named like Kubo", async (t) => {
  const { url } = await countingNode(t);
  const parts = [randomBytes(CHUNK_SIZE * 2), new Uint8Array([1, 2, 3]), new Uint8Array([4])];
  // Built by hand: FormData drops an empty filename, which Kubo clients send.
  const boundary = "cloister-test-boundary";
  const body = Buffer.concat([
    ...["big%20one", "", "last"].flatMap((filename, i) => [
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file${i === 0 ? "" : `-${i}`}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      parts[i] ?? new Uint8Array(),
      Buffer.from("\r\n"),
    ]),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
  const res = await fetch(`${url}/api/v0/add?cid-version=1&raw-leaves=true`, {
    method: "POST",
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    body,
  });
  assert.equal(res.status, 200);
  const lines = (await res.text()).trimEnd().split("\n").map((line) => JSON.parse(line) as { Name: string; Hash: string; Size: string });
  const cids = await Promise.all(parts.map(async (bytes) => (await cidOfBytes(bytes)).toString()));
  assert.deepEqual(
    lines.map((line) => [line.Name, line.Hash]),
    [
      ["big one", cids[0]],
      [cids[1], cids[1]],
      ["last", cids[2]],
    ],
  );
  assert.equal(lines[2]?.Size, "1");
  assert.ok(Number(lines[0]?.Size) > CHUNK_SIZE * 2, "a multi-chunk blob's size counts its root node too");
});

test("a multi-file add with one bad part stores none of its files", async (t) => {
  const { url } = await countingNode(t);
  const kubo = openKuboStore(url, { offline: true });
  const good = randomBytes(64);
  const form = new FormData();
  form.append("file", new Blob([good]), "good");
  form.append("file-1", "a text part, no filename");
  const res = await fetch(`${url}/api/v0/add?cid-version=1`, { method: "POST", body: form });
  assert.equal(res.status, 400);
  assert.equal(await kubo.has((await cidOfBytes(good)).toString()), false);
});

test("putMany maps an unreachable node to STORAGE_UNREACHABLE", async (t) => {
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  const server = await startKuboRpcServer({ store: helia });
  await server.close();
  const kubo = openKuboStore(server.url);
  await assert.rejects(kubo.putMany([new Uint8Array([1]), new Uint8Array([2])]), storageError("STORAGE_UNREACHABLE", server.url));
});

test("putMany refuses a node that leaves a blob unanswered or mints another CID", async (t) => {
  const blobs = [new Uint8Array([1]), new Uint8Array([2])];
  const [first, second] = await Promise.all(blobs.map(async (bytes) => (await cidOfBytes(bytes)).toString()));
  let answer = "";
  const liar = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(answer);
  });
  await new Promise<void>((resolve) => liar.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => liar.close(() => resolve())));
  const kubo = openKuboStore(`http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
  const line = (name: string, hash: string | undefined): string => `${JSON.stringify({ Name: name, Hash: hash, Size: "1" })}\n`;

  answer = line("0", first);
  await assert.rejects(kubo.putMany(blobs), storageError("STORAGE_FAILED", "without a CID for blob 1"));
  answer = line("1", second) + line("0", second);
  await assert.rejects(kubo.putMany(blobs), storageError("STORAGE_FAILED", "import settings"));
  answer = line("1", second) + line("0", first);
  assert.deepEqual(await kubo.putMany(blobs), [first, second], "lines are matched by name, not order");
});
