import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStorageError, type StorageErrorCode } from "../../src/storage/blob-store.ts";

export async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-storage-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every block file under a Helia store directory, with its size. */
export async function blockFiles(storeDir: string): Promise<{ path: string; size: number }[]> {
  const root = join(storeDir, "blocks");
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && e.name.endsWith(".data"));
  return Promise.all(
    files.map(async (e) => {
      const path = join(e.parentPath, e.name);
      return { path, size: (await stat(path)).size };
    }),
  );
}

export function storageError(code: StorageErrorCode, messageIncludes?: string) {
  return (err: unknown): boolean => {
    if (!isStorageError(err, code)) return false;
    return messageIncludes === undefined || err.message.includes(messageIncludes);
  };
}
