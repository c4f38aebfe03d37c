/**
 * An exclusive lock on a destination file, held while a run loads it: two
 * candidates that run the same slot at once (the failover deadline passed
 * while the first was still loading) would otherwise both find no run
 * marker and both append. The lock is `<file>.cloister-lock`, created with
 * O_EXCL and holding the owner's pid; a lock whose process is gone is stale
 * and taken over. It guards honest concurrent runs on one machine only: the
 * host owns this disk and can remove it (docs/pipelines.md, file destinations).
 */
import { open, readFile, rename, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { PipelineRunError } from "./errors.ts";

const POLL_MS = 50;

export interface FileLockOptions {
  /** How long to wait for another run to release the file (default 5 minutes). */
  timeoutMs?: number;
}

const lockPath = (path: string) => `${path}.cloister-lock`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function tryCreate(lock: string): Promise<boolean> {
  try {
    const handle = await open(lock, "wx");
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/** The pid in a lock file, or undefined when it is gone or not yet written. */
async function holder(lock: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(lock, "utf8")).trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes a dead holder's lock aside under a name of our own, so that of two
 * runs finding it stale at once only one removes it; the other's rename fails.
 */
async function breakStale(lock: string, pid: number): Promise<void> {
  const aside = `${lock}.stale-${process.pid}`;
  try {
    await rename(lock, aside);
  } catch {
    return;
  }
  if ((await holder(aside)) === pid) await unlink(aside).catch(() => undefined);
  else await rename(aside, lock).catch(() => undefined);
}

/** Runs `fn` holding the destination file's lock. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lock = lockPath(path);
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  let pid: number | undefined;
  while (!(await tryCreate(lock))) {
    pid = await holder(lock);
    if (pid !== undefined && !alive(pid)) {
      await breakStale(lock, pid);
      continue;
    }
    if (Date.now() > deadline) {
      throw new PipelineRunError("PIPELINE_LOAD_FAILED", `destination ${path} is locked by ${pid === undefined ? "another run" : `process ${pid}`} (another run of the pipeline is loading it); if no run is going, delete ${lock}`, {
        details: { lock, ...(pid === undefined ? {} : { pid }) },
      });
    }
    await sleep(POLL_MS);
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}
