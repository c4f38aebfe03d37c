import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { CID } from "multiformats/cid";
import { openHeliaStore, type HeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { CHUNK_SIZE, cidOfBytes } from "../../src/storage/unixfs-profile.ts";
import { overwriteBlock, storageError, storedBlocks, tempDir } from "./helpers.ts";

const MiB = 1024 * 1024;

async function embeddedNode(t: TestContext): Promise<{ dir: string; helia: HeliaStore; url: string }> {
  const dir = await tempDir(t);
  const helia = await openHeliaStore(dir);
  const server = await startKuboRpcServer({ store: helia, host: "127.0.0.1", port: 0 });
  t.after(async () => {
    await server.close();
    await helia.close();
  });
  return { dir, helia, url: server.url };
}

async function rpc(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/api/v0/${path}`, { method: "POST", ...init });
  return { status: res.status, body: await res.text() };
}

test("the Kubo client through the embedded server gives the Helia store's CIDs, small and multi-chunk", async (t) => {
  const { helia, url } = await embeddedNode(t);
  const kubo = openKuboStore(url);
  t.after(() => kubo.close());
  for (const bytes of [new TextEncoder().encode("hello\n"), randomBytes(3 * MiB)]) {
    const viaKubo = await kubo.put(bytes);
    assert.equal(CID.parse(viaKubo).version, 1);
    assert.equal(viaKubo, (await cidOfBytes(bytes)).toString());
    assert.equal(await helia.put(bytes), viaKubo);
    assert.deepEqual(await kubo.get(viaKubo), new Uint8Array(bytes));
    assert.deepEqual(await helia.get(viaKubo), new Uint8Array(bytes));
    assert.equal(await kubo.has(viaKubo), true);
  }
  assert.equal(
    await kubo.put(new TextEncoder().encode("hello\n")),
    "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
  );
});

test("missing, malformed and oversized blobs map to typed errors through the RPC API", async (t) => {
  const { url } = await embeddedNode(t);
  const kubo = openKuboStore(url, { offline: true });
  const absent = (await cidOfBytes(randomBytes(40))).toString();
  const started = performance.now();
  await assert.rejects(kubo.get(absent), storageError("BLOB_NOT_FOUND", url));
  assert.ok(performance.now() - started < 1000, "fails fast");
  assert.equal(await kubo.has(absent), false);
  await assert.rejects(kubo.get("bafy-not-a-cid"), storageError("INVALID_CID"));
  await assert.rejects(kubo.has("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"), storageError("INVALID_CID"));

  const size = CHUNK_SIZE + 10;
  const cid = await kubo.put(randomBytes(size));
  assert.equal((await kubo.get(cid, { maxBytes: size })).byteLength, size);
  await assert.rejects(kubo.get(cid, { maxBytes: size - 1 }), storageError("BLOB_TOO_LARGE"));
});

test("an unreachable node gives STORAGE_UNREACHABLE naming the URL", async (t) => {
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  const server = await startKuboRpcServer({ store: helia });
  const url = server.url;
  await server.close();
  const kubo = openKuboStore(url);
  const cid = (await cidOfBytes(new Uint8Array([1]))).toString();
  await assert.rejects(kubo.put(new Uint8Array([1])), storageError("STORAGE_UNREACHABLE", url));
  await assert.rejects(kubo.get(cid), storageError("STORAGE_UNREACHABLE", url));
  await assert.rejects(kubo.has(cid), storageError("STORAGE_UNREACHABLE", url));
});

test("tampered blocks on the node's disk are refused through the API", async (t) => {
  const dir = await tempDir(t);
  const bytes = randomBytes(CHUNK_SIZE * 3);
  // The node is stopped while its disk is altered: LevelDB admits one opener.
  const serveStore = async (): Promise<{ kubo: ReturnType<typeof openKuboStore>; stop(): Promise<void> }> => {
    const helia = await openHeliaStore(dir);
    const server = await startKuboRpcServer({ store: helia, host: "127.0.0.1", port: 0 });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      await server.close();
      await helia.close();
    };
    t.after(stop);
    return { kubo: openKuboStore(server.url), stop };
  };
  let node = await serveStore();
  const cid = await node.kubo.put(bytes);
  await node.stop();
  const leaves = (await storedBlocks(dir)).filter((b) => b.bytes.byteLength === CHUNK_SIZE);
  const leaf = (index: number): { cid: CID; bytes: Buffer } => {
    const chunk = bytes.subarray(index * CHUNK_SIZE, (index + 1) * CHUNK_SIZE);
    const found = leaves.find((l) => l.bytes.equals(chunk));
    assert.ok(found, `leaf ${index} on disk`);
    return found;
  };
  const flipByte = (data: Buffer): Buffer => {
    const altered = Buffer.from(data);
    altered[7] = (altered[7] ?? 0) ^ 1;
    return altered;
  };

  // The first leaf fails before the response starts: a typed error response.
  const first = leaf(0);
  await overwriteBlock(dir, first.cid, flipByte(first.bytes));
  node = await serveStore();
  await assert.rejects(node.kubo.get(cid), storageError("BLOB_CORRUPTED"));
  await node.stop();
  await overwriteBlock(dir, first.cid, first.bytes);
  node = await serveStore();
  assert.deepEqual(await node.kubo.get(cid), new Uint8Array(bytes));
  await node.stop();

  // A later leaf fails mid-transfer: the server cuts the connection, and the
  // client never returns a short blob.
  const last = leaf(2);
  await overwriteBlock(dir, last.cid, flipByte(last.bytes));
  node = await serveStore();
  await assert.rejects(node.kubo.get(cid), (err: unknown) =>
    storageError("BLOB_CORRUPTED")(err) || storageError("STORAGE_UNREACHABLE", "broke off")(err),
  );
});

test("the client refuses bytes that do not hash to the CID, and a node that mints other CIDs", async (t) => {
  const wanted = new TextEncoder().encode("the real blob");
  const cid = (await cidOfBytes(wanted)).toString();
  const otherCid = (await cidOfBytes(new TextEncoder().encode("other"))).toString();
  const liar = createServer((req, res) => {
    req.resume();
    if (req.url?.startsWith("/api/v0/cat")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("a forged blob");
    } else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify({ Name: otherCid, Hash: otherCid, Size: "5" })}\n`);
    }
  });
  await new Promise<void>((resolve) => liar.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => liar.close(() => resolve())));
  const kubo = openKuboStore(`http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
  await assert.rejects(kubo.get(cid), storageError("BLOB_CORRUPTED", cid));
  await assert.rejects(kubo.put(wanted), storageError("STORAGE_FAILED", "import settings"));
});

test("the server serves cat ranges and version, and refuses add options and commands it does not implement", async (t) => {
  const { helia, url } = await embeddedNode(t);
  const bytes = randomBytes(CHUNK_SIZE + 100);
  const cid = await helia.put(bytes);

  const range = await fetch(`${url}/api/v0/cat?arg=/ipfs/${cid}&offset=${CHUNK_SIZE - 2}&length=5`, { method: "POST" });
  assert.equal(range.status, 200);
  assert.deepEqual(new Uint8Array(await range.arrayBuffer()), new Uint8Array(bytes.subarray(CHUNK_SIZE - 2, CHUNK_SIZE + 3)));
  assert.match((await rpc(url, "version")).body, /"Version"/);

  const form = new FormData();
  form.append("file", new Blob([new Uint8Array([1, 2, 3])]), "three.bin");
  for (const query of ["cid-version=2", "chunker=rabin", "chunker=size-2000000", "hash=blake2b-256", "cid-version=1&trickle=true", "inline=true"]) {
    const res = await rpc(url, `add?${query}`, { body: form });
    assert.equal(res.status, 400, query);
    assert.match(res.body, /"Type":"error"/);
  }
  const added = await rpc(url, "add?cid-version=1&raw-leaves=true", { body: form });
  assert.equal(added.status, 200);
  const three = (await cidOfBytes(new Uint8Array([1, 2, 3]))).toString();
  assert.deepEqual(JSON.parse(added.body), { Name: "three.bin", Hash: three, Size: "3" });
  const textPart = new FormData();
  textPart.append("file", "no filename");
  assert.equal((await rpc(url, "add?cid-version=1", { body: textPart })).status, 400);
  assert.equal((await rpc(url, `cat?arg=${cid}`, { headers: { origin: "https://evil.example" } })).status, 403);
  assert.equal((await fetch(`${url}/api/v0/cat?arg=${cid}`)).status, 405);
  assert.equal((await rpc(url, "no/such/command")).status, 404);
  const missingPath = await rpc(url, `cat?arg=${cid}/sub/path`);
  assert.equal(missingPath.status, 500);
  assert.match(missingPath.body, /BLOB_NOT_FOUND/);
});

test("the server binds to loopback only", async (t) => {
  const helia = await openHeliaStore(await tempDir(t));
  t.after(() => helia.close());
  await assert.rejects(startKuboRpcServer({ store: helia, host: "0.0.0.0" }), storageError("STORAGE_FAILED", "authentication"));
});
