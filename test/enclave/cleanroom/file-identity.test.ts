/**
 * The compute party's own file is hashed first and read later (a parquet file by the query itself): its
 * identity taken before the hash must still hold after the read, or the run is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout } from "node:timers/promises";
import { checkUnchanged, fileIdentity } from "../../../src/enclave/jobs/collab/file-identity.ts";
import { ConnectorError } from "../../../src/enclave/connectors/index.ts";

const changed = (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_FILE_CHANGED" && /changed while the run read it/.test(e.message);

test("an untouched file passes; a rewritten, replaced or removed one is refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-file-identity-"));
  try {
    const path = join(dir, "own.parquet");
    await writeFile(path, "first bytes");
    const before = await fileIdentity(path);
    await checkUnchanged(before);

    // Same size, modification time put back: the change time still moves (past the filesystem clock's tick).
    await setTimeout(20);
    const { mtimeNs } = before;
    await writeFile(path, "other bytes");
    const seconds = Number(mtimeNs / 1_000_000_000n);
    await utimes(path, seconds, seconds);
    await assert.rejects(checkUnchanged(before), changed);

    const again = await fileIdentity(path);
    await writeFile(join(dir, "new.parquet"), "other bytes");
    await rename(join(dir, "new.parquet"), path);
    await assert.rejects(checkUnchanged(again), changed);

    const last = await fileIdentity(path);
    await rm(path);
    await assert.rejects(checkUnchanged(last), changed);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
