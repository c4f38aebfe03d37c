/**
 * A file's identity as the filesystem reports it (device, inode, size, modification and change times), taken
 * before a file is hashed and compared after the last read of it: a file replaced (a new inode) or written
 * (new times or size) between the hash and the read is refused, so a provenance digest is never that of
 * other bytes than the query read through an ordinary change. A host that serves different bytes to two
 * reads of an unchanged file (a filesystem of its own making) is not caught here: the file is the compute
 * party's own, on its own machine (docs/cleanroom.md, "Third session").
 */
import { stat } from "node:fs/promises";
import { ConnectorError } from "../../connectors/index.ts";

export interface FileIdentity {
  path: string;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export async function fileIdentity(path: string): Promise<FileIdentity> {
  const s = await stat(path, { bigint: true });
  return { path, dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

/** Refuses when the file at `before.path` is no longer the file `before` describes (or is gone). */
export async function checkUnchanged(before: FileIdentity): Promise<void> {
  const now = await fileIdentity(before.path).catch(() => undefined);
  const same = now !== undefined && (["dev", "ino", "size", "mtimeNs", "ctimeNs"] as const).every((k) => now[k] === before[k]);
  if (!same) {
    throw new ConnectorError("CONNECTOR_FILE_CHANGED", `file ${before.path} changed while the run read it (its inode, size or times differ from when it was hashed): its digest might not be of the rows the query read; run again once the file is settled`, {
      details: { path: before.path },
    });
  }
}
