/**
 * The node's chain follower (chain/follower.ts), its checkpoint in `<dataDir>/chain-checkpoint.json`.
 *
 * Nodes of earlier versions kept two files instead: the task watcher's `checkpoint.json` ({ block }) and
 * the reopen keeper's `reopen-keeper.json` ({ version: 2, block, attempts }; an older one without a version
 * held no attempts). When the new file does not exist yet they are read once, written into it as the
 * positions of the task watcher and the reopen keeper (the keeper's attempts as its saved view; a view of
 * the oldest format is dropped, so the keeper reads again from the deployment block, as that version did),
 * and deleted. A restarted node thus resumes where the old one stopped, and no file is read twice.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ChainFollower, type ChainFollowerOptions } from "../chain/follower.ts";
import { fileCheckpoint, writeCheckpointFile, type SavedPosition } from "../chain/follower-checkpoint.ts";
import { CloisterError } from "../util/base-error.ts";
import { reopenKeeperId } from "./reopen-keeper.ts";
import { taskWatcherId } from "./task-watcher.ts";

export const checkpointFile = "chain-checkpoint.json";
const legacyTaskCheckpoint = "checkpoint.json";
const legacyKeeperView = "reopen-keeper.json";

export class LegacyCheckpointError extends CloisterError<"LEGACY_CHECKPOINT"> {}

/** The node's follower, after migrating the checkpoint files of earlier versions (see above). */
export function openNodeFollower(dataDir: string, options: Omit<ChainFollowerOptions, "checkpoint">): ChainFollower {
  const path = join(dataDir, checkpointFile);
  migrateLegacyCheckpoints(dataDir, path);
  return new ChainFollower({ ...options, checkpoint: fileCheckpoint(path) });
}

function migrateLegacyCheckpoints(dataDir: string, path: string): void {
  const taskPath = join(dataDir, legacyTaskCheckpoint);
  const keeperPath = join(dataDir, legacyKeeperView);
  const task = readLegacy(taskPath);
  const keeper = readLegacy(keeperPath);
  if (task === undefined && keeper === undefined) return;
  // A new file wins: the old ones are leftovers of a migration interrupted before it deleted them.
  if (!existsSync(path)) {
    const positions = new Map<string, SavedPosition>();
    if (task !== undefined) positions.set(taskWatcherId, { block: blockOf(taskPath, task) });
    if (keeper !== undefined && (keeper as { version?: unknown }).version === 2) {
      const attempts = (keeper as { attempts?: unknown }).attempts;
      if (!Array.isArray(attempts)) throw new LegacyCheckpointError("LEGACY_CHECKPOINT", `${keeperPath} lists no attempts; delete it to rebuild the reopen keeper's view from the deployment block`);
      positions.set(reopenKeeperId, { block: blockOf(keeperPath, keeper), state: attempts });
    }
    writeCheckpointFile(path, positions);
  }
  rmSync(taskPath, { force: true });
  rmSync(keeperPath, { force: true });
}

/** The parsed JSON of a file, undefined when there is none. */
function readLegacy(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new LegacyCheckpointError("LEGACY_CHECKPOINT", `${path} is unreadable: ${(error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new LegacyCheckpointError("LEGACY_CHECKPOINT", `${path} is not JSON; delete it to rescan from the deployment block`, { cause: error, details: { path } });
  }
}

function blockOf(path: string, saved: unknown): bigint {
  const block = (saved as { block?: unknown } | null)?.block;
  if (typeof block !== "string" || !/^\d+$/.test(block)) throw new LegacyCheckpointError("LEGACY_CHECKPOINT", `${path} names no block; delete it to rescan from the deployment block`, { details: { path } });
  return BigInt(block);
}
