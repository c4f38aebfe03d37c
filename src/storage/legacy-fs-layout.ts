/**
 * Moves a store directory written by the earlier file-per-entry layout
 *
 *   <dir>/blocks     one file per block (blockstore-fs)
 *   <dir>/datastore  one file per key, /pins/<cid> (datastore-fs)
 *
 * into the LevelDB stores helia-store.ts now opens. Every block is copied
 * before any pin (a pinned blob stays complete), and each old folder is
 * renamed to <name>.migrated only once all of its entries are copied. Copies
 * are idempotent, so a migration cut short simply runs again on the next
 * open; the renamed folders are kept for the operator to delete.
 */
import { access, rename } from "node:fs/promises";
import { join } from "node:path";
import type { LevelBlockstore } from "blockstore-level";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import type { LevelDatastore } from "datastore-level";
import { errorMessage, StorageError } from "./blob-store.ts";

const LEGACY_BLOCKS = "blocks";
const LEGACY_DATASTORE = "datastore";
const MIGRATED_SUFFIX = ".migrated";

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function migrateLegacyLayout(dir: string, blocks: LevelBlockstore, datastore: LevelDatastore): Promise<void> {
  try {
    const oldBlocks = join(dir, LEGACY_BLOCKS);
    if (await exists(oldBlocks)) {
      const source = new FsBlockstore(oldBlocks, { createIfMissing: false });
      await source.open();
      try {
        // Copied as stored: reads verify every block against its CID anyway.
        for await (const { cid, bytes } of source.getAll()) await blocks.put(cid, bytes);
      } finally {
        await source.close();
      }
      await rename(oldBlocks, oldBlocks + MIGRATED_SUFFIX);
    }
    const oldDatastore = join(dir, LEGACY_DATASTORE);
    if (await exists(oldDatastore)) {
      const source = new FsDatastore(oldDatastore, { createIfMissing: false });
      await source.open();
      try {
        for await (const { key, value } of source.query({})) await datastore.put(key, value);
      } finally {
        await source.close();
      }
      await rename(oldDatastore, oldDatastore + MIGRATED_SUFFIX);
    }
  } catch (err) {
    throw new StorageError(
      "STORAGE_FAILED",
      `Cannot move the IPFS store in ${dir} from its old layout (${LEGACY_BLOCKS}/, ${LEGACY_DATASTORE}/) to LevelDB: ${errorMessage(err)}. ` +
        `Nothing was deleted; fix the cause (disk space, permissions, or a ${LEGACY_BLOCKS}${MIGRATED_SUFFIX}/ or ${LEGACY_DATASTORE}${MIGRATED_SUFFIX}/ folder already there) and open the store again to resume.`,
      { cause: err },
    );
  }
}
