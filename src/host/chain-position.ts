/**
 * A node's saved position on the chain (the task watcher's checkpoint, the reopen keeper's view) must not
 * be ahead of the chain it reads. One that is means the node is pointed at another chain than the one it
 * saved from, or at an endpoint that is behind (still syncing, or a chain journal that lost its tail while
 * nodes/ survived). A crawler would then wait for blocks that never come and ignore every task meanwhile.
 *
 * The node refuses to start rather than rescanning by itself: a rescan would hide a wrong or lagging
 * endpoint (and redo, against it, the work of every block since the deployment), while the operator can
 * tell which case it is and choose: point --rpc/--ws at the right chain, wait for the endpoint to catch
 * up, or delete the file to rescan from the deployment block.
 */
import { CloisterError } from "../util/base-error.ts";

export class ChainBehindError extends CloisterError<"CHAIN_BEHIND_SAVED_POSITION"> {
  /** The file holding the saved position. */
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
      { details: { path, savedBlock: savedBlock.toString(), head: head.toString() } },
    );
    this.path = path;
    this.savedBlock = savedBlock;
    this.head = head;
  }
}

/** Throws ChainBehindError when `savedBlock` is above the chain's `head`. */
export function assertNotAheadOfChain(saved: { what: string; path: string; block: bigint }, head: bigint, when: "start" | "running"): void {
  if (saved.block > head) throw new ChainBehindError(saved.what, saved.path, saved.block, head, when);
}
