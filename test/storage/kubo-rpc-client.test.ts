/**
 * The embedded IPFS node driven by the official Kubo RPC client
 * (kubo-rpc-client): every call a Kubo user makes in ordinary use, with CIDs
 * checked against the ones Kubo's import parameters give, computed here
 * independently with ipfs-unixfs-importer.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import * as dagPb from "@ipld/dag-pb";
import { importer, type ImporterOptions } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { create, type KuboRPCClient } from "kubo-rpc-client";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import * as raw from "multiformats/codecs/raw";
import { openHeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";
import { openKuboStore } from "../../src/storage/kubo-store.ts";
import { tempDir } from "./helpers.ts";

const KiB = 1024;
const HELLO = new TextEncoder().encode("hello world\n");
/** `ipfs add` of "hello world\n" with Kubo's defaults, a well-known vector. */
const HELLO_CIDV0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";

async function node(t: TestContext): Promise<{ ipfs: KuboRPCClient; url: string }> {
  const helia = await openHeliaStore(await tempDir(t));
  const server = await startKuboRpcServer({ store: helia });
  t.after(async () => {
    await server.close();
    await helia.close();
  });
  return { ipfs: create({ url: server.url }), url: server.url };
}

/** Kubo's add parameters: CIDv0 means dag-pb leaves, CIDv1 raw leaves; 256 KiB chunks, 174 links a node. */
function kuboImport(cidVersion: 0 | 1, extra: Partial<ImporterOptions> = {}): Partial<ImporterOptions> {
  return {
    cidVersion,
    rawLeaves: cidVersion === 1,
    leafType: "file",
    chunker: fixedSize({ chunkSize: 256 * KiB }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    reduceSingleLeafToSelf: true,
    ...extra,
  };
}

/** Every entry the importer gives for these files, computed without storing anything. */
async function expectedEntries(files: { path: string; content: Uint8Array }[], options: Partial<ImporterOptions>) {
  const discard = { put: async (cid: CID) => cid };
  const out: { path: string; cid: string }[] = [];
  for await (const entry of importer(files, discard, options)) out.push({ path: entry.path ?? "", cid: entry.cid.toString() });
  return out;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  return Buffer.concat(await collect(chunks));
}

async function rpc(url: string, path: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${url}/api/v0/${path}`, { method: "POST" });
  return { status: res.status, json: await res.json() };
}

/** The files of a tar archive, extracted by the system's tar. */
async function untar(t: TestContext, archive: Buffer, member: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-tar-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  return readFile(join(dir, member));
}

test("id answers with a peer ID and addresses, so isOnline() is true; another peer's id is offline; version answers", async (t) => {
  const { ipfs } = await node(t);
  const { url } = await node(t);
  const id = await ipfs.id();
  assert.match(id.id.toString(), /^12D3KooW/);
  assert.deepEqual((await ipfs.id({ peerId: id.id })).id.toString(), id.id.toString());
  await assert.rejects(ipfs.id({ peerId: (await create({ url }).id()).id }), /this command must be run in online mode/);
  assert.ok(id.addresses.length > 0);
  assert.equal(await ipfs.isOnline(), true);
  const version = await ipfs.version();
  assert.equal(typeof version.version, "string");
  assert.notEqual(version.version, "");
});

test("add with Kubo's defaults gives Kubo's CIDv0: the hello-world vector and a multi-chunk file", async (t) => {
  const { ipfs } = await node(t);
  const hello = await ipfs.add(HELLO);
  assert.equal(hello.cid.toString(), HELLO_CIDV0);
  assert.equal(hello.size, 20);
  const big = randomBytes(700 * KiB);
  const [expected] = await expectedEntries([{ path: "", content: big }], kuboImport(0));
  const added = await ipfs.add(big);
  assert.equal(added.cid.toString(), expected?.cid);
  assert.equal(added.cid.version, 0);
  assert.deepEqual(await bytesOf(ipfs.cat(added.cid)), big);
  assert.deepEqual(await bytesOf(ipfs.cat(added.cid, { offset: 300 * KiB, length: 10 })), big.subarray(300 * KiB, 300 * KiB + 10));
});

test("add with cid-version=1, raw-leaves=false and a chunker gives Kubo's CIDv1", async (t) => {
  const { ipfs } = await node(t);
  const big = randomBytes(600 * KiB);
  const [v1] = await expectedEntries([{ path: "", content: big }], kuboImport(1));
  assert.equal((await ipfs.add(big, { cidVersion: 1 })).cid.toString(), v1?.cid);
  const [rawV1] = await expectedEntries([{ path: "", content: big }], kuboImport(1, { rawLeaves: false }));
  assert.equal((await ipfs.add(big, { cidVersion: 1, rawLeaves: false })).cid.toString(), rawV1?.cid);
  const [small] = await expectedEntries([{ path: "", content: big }], kuboImport(1, { chunker: fixedSize({ chunkSize: 100 * KiB }) }));
  assert.equal((await ipfs.add(big, { cidVersion: 1, chunker: "size-102400" })).cid.toString(), small?.cid);
  await assert.rejects(ipfs.add(big, { chunker: "rabin" }), /chunker=rabin/);
});

test("add with only-hash stores nothing, pin=false does not pin, wrap-with-directory wraps", async (t) => {
  const { ipfs } = await node(t);
  const bytes = randomBytes(1000);
  const onlyHash = await ipfs.add(bytes, { onlyHash: true });
  const [expected] = await expectedEntries([{ path: "", content: bytes }], kuboImport(0));
  assert.equal(onlyHash.cid.toString(), expected?.cid);
  await assert.rejects(ipfs.block.stat(onlyHash.cid), /not found|not stored/i);

  const unpinned = await ipfs.add(bytes, { pin: false });
  assert.equal(unpinned.cid.toString(), expected?.cid);
  await assert.rejects(collect(ipfs.pin.ls({ paths: unpinned.cid })), /is not pinned/);
  assert.deepEqual(await bytesOf(ipfs.cat(unpinned.cid)), bytes);

  const files = [{ path: "a.txt", content: bytes }, { path: "b.txt", content: HELLO }];
  const wrapped = await collect(ipfs.addAll(files, { wrapWithDirectory: true }));
  const want = await expectedEntries(files, kuboImport(0, { wrapWithDirectory: true }));
  assert.deepEqual(
    wrapped.map((entry) => ({ path: entry.path, cid: entry.cid.toString() })).sort((a, b) => a.path.localeCompare(b.path)),
    want.sort((a, b) => a.path.localeCompare(b.path)),
  );
  const dir = wrapped.find((entry) => entry.path === "");
  assert.ok(dir);
  const listing = await collect(ipfs.ls(dir.cid));
  assert.deepEqual(listing.map(({ name, cid, type }) => ({ name, cid: cid.toString(), type })), [
    { name: "a.txt", cid: expected?.cid, type: "file" },
    { name: "b.txt", cid: HELLO_CIDV0, type: "file" },
  ]);
  assert.deepEqual(await bytesOf(ipfs.cat(`/ipfs/${dir.cid}/b.txt`)), Buffer.from(HELLO));
});

test("get answers a tar stream of a file and of a directory", async (t) => {
  const { ipfs } = await node(t);
  const bytes = randomBytes(300 * KiB);
  const file = await ipfs.add(bytes);
  assert.deepEqual(await untar(t, await bytesOf(ipfs.get(file.cid)), file.cid.toString()), bytes);
  // A name past the tar header's 100 bytes goes in a PAX record.
  const longName = `${"n".repeat(120)}.bin`;
  const files = [{ path: "x/y.bin", content: bytes }, { path: longName, content: HELLO }];
  const dir = (await collect(ipfs.addAll(files, { wrapWithDirectory: true }))).find((e) => e.path === "");
  assert.ok(dir);
  const archive = await bytesOf(ipfs.get(dir.cid));
  assert.deepEqual(await untar(t, archive, `${dir.cid}/x/y.bin`), bytes);
  assert.deepEqual(await untar(t, archive, `${dir.cid}/${longName}`), Buffer.from(HELLO));
});

test("block put, get, stat and rm, and dag/get, on Kubo's codecs", async (t) => {
  const { ipfs, url } = await node(t);
  const bytes = randomBytes(5000);
  const cid = await ipfs.block.put(bytes);
  assert.equal(cid.toString(), CID.createV1(raw.code, await sha256.digest(bytes)).toString());
  assert.deepEqual(Buffer.from(await ipfs.block.get(cid)), bytes);
  assert.deepEqual(await ipfs.block.stat(cid), { cid, size: 5000 });

  const pbNode = dagPb.encode(dagPb.prepare({ Data: new Uint8Array([8, 1]), Links: [{ Hash: cid, Name: "leaf", Tsize: 5000 }] }));
  const pbCid = await ipfs.block.put(pbNode, { format: "v0" });
  assert.equal(pbCid.toString(), CID.createV0(await sha256.digest(pbNode)).toString());
  const pbCidV1 = await ipfs.block.put(pbNode, { cidCodec: "dag-pb" } as { format?: string });
  assert.equal(pbCidV1.toString(), CID.createV1(dagPb.code, await sha256.digest(pbNode)).toString());
  const got = await ipfs.dag.get(pbCid);
  assert.equal((got.value as dagPb.PBNode).Links[0]?.Name, "leaf");
  const dagJson = await rpc(url, `dag/get?arg=${pbCid}`);
  assert.equal(dagJson.status, 200);
  assert.deepEqual((dagJson.json as { Links: unknown[] }).Links, [{ Hash: { "/": cid.toString() }, Name: "leaf", Tsize: 5000 }]);

  const refs = await collect(ipfs.refs(pbCid));
  assert.deepEqual(refs.map((r) => r.ref), [cid.toString()]);

  const removed = await collect(ipfs.block.rm(cid));
  assert.deepEqual(removed.map((r) => [r.cid.toString(), r.error]), [[cid.toString(), undefined]]);
  await assert.rejects(ipfs.block.get(cid), /not found|not stored/i);
});

test("block rm refuses a pinned block; pin add, ls without arguments, rm", async (t) => {
  const { ipfs } = await node(t);
  const big = randomBytes(600 * KiB);
  const added = await ipfs.add(big, { cidVersion: 1, pin: false });
  assert.deepEqual((await collect(ipfs.pin.addAll([added.cid]))).map(String), [added.cid.toString()]);
  const recursive = await collect(ipfs.pin.ls({ type: "recursive" }));
  assert.deepEqual(recursive.map((p) => [p.cid.toString(), p.type]), [[added.cid.toString(), "recursive"]]);
  const leaves = await collect(ipfs.refs(added.cid, { recursive: true }));
  assert.equal(leaves.length, 3);
  // As Kubo lists them by default: the pin, and every block under it as indirect.
  const all = await collect(ipfs.pin.ls());
  assert.deepEqual(all.map((p) => [p.cid.toString(), p.type]), [[added.cid.toString(), "recursive"], ...leaves.map((l) => [l.ref, "indirect"])]);
  const leaf = CID.parse(leaves[0]?.ref ?? "");
  const [refused] = await collect(ipfs.block.rm(leaf));
  assert.match(String(refused?.error), /pinned/);
  assert.deepEqual((await collect(ipfs.pin.rmAll([{ path: added.cid.toString() }]))).map(String), [added.cid.toString()]);
  assert.deepEqual(await collect(ipfs.pin.ls()), []);
  await assert.rejects(collect(ipfs.pin.rmAll([{ path: added.cid.toString() }])), /not pinned/);
  const [removed] = await collect(ipfs.block.rm(leaf));
  assert.equal(removed?.error, undefined);
  await assert.rejects(collect(ipfs.pin.addAll([added.cid])), /not found|not stored/i);
});

test("files/stat, ls of a chunked file, repo/stat and config answer as Kubo does", async (t) => {
  const { ipfs, url } = await node(t);
  const big = randomBytes(600 * KiB);
  const added = await ipfs.add(big);
  const stat = await ipfs.files.stat(`/ipfs/${added.cid}`);
  assert.equal(stat.cid.toString(), added.cid.toString());
  assert.equal(stat.type, "file");
  assert.equal(Number(stat.size), big.byteLength);
  assert.equal(Number(stat.cumulativeSize), added.size);
  assert.equal(stat.blocks, 3);
  // ls of a chunked file lists its blocks, as Kubo's does.
  const chunks = await collect(ipfs.ls(added.cid));
  assert.deepEqual(chunks.map((c) => c.type), ["file", "file", "file"]);
  assert.equal(chunks.reduce((sum, c) => sum + c.size, 0), big.byteLength);
  const repo = await ipfs.repo.stat();
  assert.equal(repo.numObjects, 4n);
  assert.ok(repo.repoSize >= BigInt(big.byteLength));
  assert.equal(await ipfs.config.get("Addresses.API"), `/ip4/127.0.0.1/tcp/${new URL(url).port}`);
  await assert.rejects(ipfs.config.get("No.Such.Key"), /No\.Such\.Key/);
});

test("swarm and other network commands answer Kubo's offline error", async (t) => {
  const { ipfs, url } = await node(t);
  await assert.rejects(ipfs.swarm.peers(), /this command must be run in online mode/);
  for (const path of ["swarm/peers", "swarm/connect?arg=/ip4/1.2.3.4/tcp/4001", "dht/findprovs?arg=x", "routing/findpeer?arg=x"]) {
    const res = await rpc(url, path);
    assert.equal(res.status, 500, path);
    assert.deepEqual(res.json, { Message: "this command must be run in online mode. Try running 'ipfs daemon' first", Code: 0, Type: "error" });
  }
});

test("a malformed CID is refused with 400 and Kubo's error shape", async (t) => {
  const { ipfs, url } = await node(t);
  await assert.rejects(ipfs.block.stat("not-a-cid" as unknown as CID), /not a valid CID/);
  for (const path of ["block/get?arg=not-a-cid", "cat?arg=zzz", "pin/add?arg=nope", "ls?arg=Qmbad", "dag/get?arg=bafy!"]) {
    const res = await rpc(url, path);
    assert.equal(res.status, 400, path);
    const { Message, Code, Type } = res.json as { Message: unknown; Code: unknown; Type: unknown };
    assert.equal(Type, "error");
    assert.equal(Code, 1);
    assert.match(String(Message), /not a valid CID/);
  }
});

test("Cloister's own Kubo client keeps working next to Kubo's defaults", async (t) => {
  const { ipfs, url } = await node(t);
  const store = openKuboStore(url);
  t.after(() => store.close());
  const bytes = randomBytes(400 * KiB);
  const cid = await store.put(bytes);
  assert.equal(cid, (await ipfs.add(bytes, { cidVersion: 1 })).cid.toString());
  assert.equal(await store.has(cid), true);
  assert.deepEqual(Buffer.from(await store.get(cid)), bytes);
  assert.equal((await ipfs.add(bytes)).cid.version, 0);
});

test("block rm while an add is writing cannot delete a block the add then pins", async (t) => {
  const { ipfs } = await node(t);
  const big = randomBytes(8 * 1024 * KiB);
  const leaves: CID[] = [];
  const collecting = { put: async (cid: CID) => (cid.code === raw.code && leaves.push(cid), cid) };
  for await (const entry of importer([{ content: big }], collecting, kuboImport(1))) void entry;
  let adding = true;
  const added = ipfs.add(big, { cidVersion: 1 }).finally(() => {
    adding = false;
  });
  // Keep removing the add's leaves until it is done; a removal that lands between a leaf's write and the pin would break the pin.
  while (adding) await collect(ipfs.block.rm(leaves, { force: true }));
  const { cid } = await added;
  assert.equal((await collect(ipfs.refs(cid, { recursive: true }))).length, leaves.length);
  assert.deepEqual(await bytesOf(ipfs.cat(cid)), big);
});
