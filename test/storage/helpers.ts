import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelBlockstore } from "blockstore-level";
import type { TestContext } from "node:test";
import type { CID } from "multiformats/cid";
import { isStorageError, type StorageErrorCode } from "../../src/storage/blob-store.ts";
import { openHeliaStore, type HeliaStore } from "../../src/storage/helia-store.ts";
import { startKuboRpcServer } from "../../src/storage/kubo-rpc-server.ts";

export async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-storage-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs fn on the raw block database of a Helia store directory, bypassing the
 * store's checks. The store must be closed: LevelDB admits one opener.
 */
async function withRawBlocks<T>(storeDir: string, fn: (blocks: LevelBlockstore) => Promise<T>): Promise<T> {
  const blocks = new LevelBlockstore(join(storeDir, "blocks-level"));
  await blocks.open();
  try {
    return await fn(blocks);
  } finally {
    await blocks.close();
  }
}

/** Every block stored under a closed Helia store directory. */
export async function storedBlocks(storeDir: string): Promise<{ cid: CID; bytes: Buffer }[]> {
  return withRawBlocks(storeDir, async (blocks) => {
    const found: { cid: CID; bytes: Buffer }[] = [];
    for await (const { cid, bytes } of blocks.getAll()) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of bytes) chunks.push(chunk);
      found.push({ cid, bytes: Buffer.concat(chunks) });
    }
    return found;
  });
}

/** Replaces a block's bytes under a closed Helia store directory, as an attacker with disk access could. */
export async function overwriteBlock(storeDir: string, cid: CID, bytes: Uint8Array): Promise<void> {
  await withRawBlocks(storeDir, (blocks) => blocks.put(cid, bytes));
}

export function storageError(code: StorageErrorCode, messageIncludes?: string) {
  return (err: unknown): boolean => {
    if (!isStorageError(err, code)) return false;
    return messageIncludes === undefined || err.message.includes(messageIncludes);
  };
}

/** An embedded node whose store counts the add requests the server handles. */
export async function countingNode(t: TestContext): Promise<{ url: string; addRequests: () => number; helia: HeliaStore }> {
  const helia = await openHeliaStore(await tempDir(t));
  let addRequests = 0;
  const counted: HeliaStore = {
    ...helia,
    addMany: (blobs) => {
      addRequests++;
      return helia.addMany(blobs);
    },
  };
  const server = await startKuboRpcServer({ store: counted });
  t.after(async () => {
    await server.close();
    await helia.close();
  });
  return { url: server.url, addRequests: () => addRequests, helia };
}
