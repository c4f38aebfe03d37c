/**
 * The dashboard's web bundle (web/ built by Vite into web/dist): built by
 * `npm run build:web`, or on first serve when it is missing or older than its
 * sources, so a fresh clone needs no extra step. A build writes to a
 * temporary directory and renames it into place, so a server never serves
 * half a bundle; builds on one machine take turns (a lock file beside the
 * bundle), and one that waited finds the bundle current and builds nothing.
 */
import { existsSync } from "node:fs";
import { chmod, mkdtemp, open, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type * as Vite from "vite";
import { DevnetError } from "./errors.ts";

export const webDir = fileURLToPath(new URL("../../web/", import.meta.url));
export const webDistDir = join(webDir, "dist");
const lockFile = join(webDir, ".build.lock");
/** A lock older than this is a crashed build's: it is taken over. */
const STALE_LOCK_MS = 120_000;

/** The newest modification time under the app's sources (web/index.html, web/src) and the chain ABIs it imports. */
async function newestSource(): Promise<number> {
  const roots = [join(webDir, "index.html"), join(webDir, "src"), fileURLToPath(new URL("../chain/abi/", import.meta.url))];
  let newest = 0;
  const visit = async (path: string): Promise<void> => {
    const s = await stat(path);
    if (s.isDirectory()) {
      for (const entry of await readdir(path)) await visit(join(path, entry));
    } else newest = Math.max(newest, s.mtimeMs);
  };
  for (const root of roots) if (existsSync(root)) await visit(root);
  return newest;
}

/** True when web/dist/index.html exists and is newer than every source. */
export async function bundleIsCurrent(): Promise<boolean> {
  const index = join(webDistDir, "index.html");
  if (!existsSync(index)) return false;
  return (await stat(index)).mtimeMs >= (await newestSource());
}

/** Builds web/ into web/dist (always when `force`, else only when missing or stale); returns the dist dir. */
export async function ensureDashboardBundle(options: { force?: boolean; onStep?: (message: string) => void } = {}): Promise<string> {
  if (!options.force && (await bundleIsCurrent())) return webDistDir;
  const release = await takeLock();
  try {
    if (!options.force && (await bundleIsCurrent())) return webDistDir;
    return await build(options.onStep);
  } finally {
    await release();
  }
}

/** Takes the build lock, waiting while another live build holds it. */
async function takeLock(): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const handle = await open(lockFile, "wx");
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) await rm(lockFile, { force: true });
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function build(onStep: ((message: string) => void) | undefined): Promise<string> {
  let vite: typeof Vite;
  try {
    vite = await import("vite");
  } catch (error) {
    throw new DevnetError(`the dashboard's web bundle (${webDistDir}) is missing and Vite is not installed to build it: run 'npm install' (with dev dependencies) and 'npm run build:web'`, { cause: error });
  }
  onStep?.(`building the dashboard's web bundle into ${webDistDir} (once; 'npm run build:web' does it ahead)`);
  const out = await mkdtemp(join(webDir, ".dist-"));
  try {
    await vite.build({
      root: webDir,
      configFile: false,
      base: "./",
      logLevel: "warn",
      build: { outDir: out, emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 2048, reportCompressedSize: false },
    });
    await chmod(out, 0o755);
    await rm(webDistDir, { recursive: true, force: true });
    await rename(out, webDistDir);
  } catch (error) {
    await rm(out, { recursive: true, force: true });
    throw new DevnetError(`building the dashboard's web bundle failed: ${(error as Error).message}`, { cause: error });
  }
  return webDistDir;
}
