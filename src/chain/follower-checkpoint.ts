/**
 * The chain follower's checkpoint (follower.ts): for each subscriber, by id, the last block whose events
 * it has fully handled, and, for a subscriber that keeps a view of the chain (the reopen keeper's attempts
 * under way), that view as of the same block. One format for every user: a node keeps it in a file under
 * its data dir, written whole and renamed into place so a crash leaves the old or the new one; an SDK
 * client keeps it in memory.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { CloisterError } from "../util/base-error.ts";

/**
 * A subscriber's saved position: its events up to `block` are handled, and so are those above it named in
 * `handled` (as "block:logIndex"; handlers complete out of order); `state` is its view as of that position.
 */
export interface SavedPosition {
  block: bigint;
  handled?: string[];
  state?: unknown;
}

export interface FollowerCheckpoint {
  /** Where it is kept, for messages: a file path, or "memory". */
  readonly where: string;
  /** The saved positions by subscriber id (empty on a first start). */
  load(): Map<string, SavedPosition>;
  save(positions: ReadonlyMap<string, SavedPosition>): void;
}

export class FollowerCheckpointError extends CloisterError<"FOLLOWER_CHECKPOINT"> {
  constructor(path: string, why: string, cause?: unknown) {
    super("FOLLOWER_CHECKPOINT", `the chain follower's checkpoint ${path} is unreadable: ${why}; delete it to rescan from the deployment block`, { cause, details: { path } });
  }
}

const FORMAT_VERSION = 1;

interface SavedFile {
  version: typeof FORMAT_VERSION;
  positions: Record<string, { block: string; handled?: string[]; state?: unknown }>;
}

/** A checkpoint kept in the file at `path` (created on the first save). */
export function fileCheckpoint(path: string): FollowerCheckpoint {
  return {
    where: path,
    load() {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
        throw new FollowerCheckpointError(path, (error as Error).message, error);
      }
      return parseCheckpoint(path, text);
    },
    save(positions) {
      writeCheckpointFile(path, positions);
    },
  };
}

/** Writes `positions` to `path` in the checkpoint's format (also how a node migrates its older files). */
export function writeCheckpointFile(path: string, positions: ReadonlyMap<string, SavedPosition>): void {
  const saved: SavedFile = { version: FORMAT_VERSION, positions: {} };
  for (const [id, p] of positions) {
    saved.positions[id] = { block: p.block.toString(), ...(p.handled?.length ? { handled: p.handled } : {}), ...(p.state === undefined ? {} : { state: p.state }) };
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(saved));
  renameSync(tmp, path);
}

function parseCheckpoint(path: string, text: string): Map<string, SavedPosition> {
  let saved: Partial<SavedFile>;
  try {
    saved = JSON.parse(text) as Partial<SavedFile>;
  } catch (error) {
    throw new FollowerCheckpointError(path, "it is not JSON", error);
  }
  if (saved?.version !== FORMAT_VERSION || typeof saved.positions !== "object" || saved.positions === null) {
    throw new FollowerCheckpointError(path, `it is not a version ${FORMAT_VERSION} checkpoint`);
  }
  const positions = new Map<string, SavedPosition>();
  for (const [id, p] of Object.entries(saved.positions)) {
    if (typeof p?.block !== "string" || !/^\d+$/.test(p.block)) throw new FollowerCheckpointError(path, `the position of "${id}" has no block number`);
    const handled = p.handled ?? [];
    if (!Array.isArray(handled) || !handled.every((key) => typeof key === "string" && /^\d+:\d+$/.test(key))) {
      throw new FollowerCheckpointError(path, `the position of "${id}" lists handled logs that are not "block:logIndex"`);
    }
    positions.set(id, { block: BigInt(p.block), ...(handled.length ? { handled } : {}), ...(p.state === undefined ? {} : { state: p.state }) });
  }
  return positions;
}

/** A checkpoint that lives as long as the process (an SDK client's). */
export function memoryCheckpoint(): FollowerCheckpoint {
  let positions = new Map<string, SavedPosition>();
  return {
    where: "memory",
    load: () => new Map(positions),
    save(next) {
      positions = new Map(next);
    },
  };
}

/**
 * A saved position ahead of the chain the follower reads means it is pointed at another chain than the one
 * it saved from, or at an endpoint that is behind (still syncing, or a chain journal that lost its tail while
 * nodes/ survived). A follower would then wait for blocks that never come and miss every event meanwhile.
 *
 * A node refuses to start rather than rescanning by itself: a rescan would hide a wrong or lagging endpoint
 * (and redo, against it, the work of every block since the deployment), while the operator can tell which
 * case it is and choose: point --rpc/--ws at the right chain, wait for the endpoint to catch up, or delete
 * the file to rescan from the deployment block.
 */
export class ChainBehindError extends CloisterError<"CHAIN_BEHIND_SAVED_POSITION"> {
  /** Where the saved position is kept. */
  readonly path: string;
  readonly savedBlock: bigint;
  readonly head: bigint;

  constructor(what: string, path: string, savedBlock: bigint, head: bigint, when: "start" | "running") {
    const seen = when === "start" ? `the chain's head is block ${head}` : `the chain's head went backwards: its head is block ${head} now`;
    super(
      "CHAIN_BEHIND_SAVED_POSITION",
      `${what} ${path} is at block ${savedBlock}, but ${seen}: this node is pointed at another chain than the one it saved from, ` +
        `or at an endpoint that is behind. Point --rpc/--ws at the chain this node ran on (or wait until the endpoint has caught up), ` +
        `or, if the chain really lost those blocks, delete ${path} to rescan from the deployment block`,
      { details: { path, savedBlock: savedBlock.toString(), head: head.toString(), when } },
    );
    this.path = path;
    this.savedBlock = savedBlock;
    this.head = head;
  }
}
