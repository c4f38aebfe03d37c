/**
 * Group commit for LevelDB writes: puts made while a batch is being written
 * wait and go out together as the next batch, one native call for all of
 * them. Each LevelDB call is an async task on libuv's thread pool, whose
 * fixed cost (about 0.1 ms of CPU on a busy 2-core machine) is far above that
 * of writing a small entry. An idle database writes at once; a put resolves
 * once its batch is written, exactly as a single put would.
 */
import { groupCommit } from "../util/group-commit.ts";

export interface BatchWritable {
  batch(operations: { type: "put"; key: string; value: Uint8Array }[]): Promise<void>;
}

/** Most entries in one batch, so one batch cannot hold up a write for long. */
const MAX_BATCH = 256;
/** Most bytes in one batch; a larger entry is written on its own. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export function batchedPuts(db: BatchWritable): (key: string, value: Uint8Array) => Promise<void> {
  const put = groupCommit<{ key: string; value: Uint8Array }, void>({
    maxBatch: MAX_BATCH,
    maxWeight: MAX_BATCH_BYTES,
    weigh: (entry) => entry.value.byteLength,
    send: async (entries) => {
      await db.batch(entries.map(({ key, value }) => ({ type: "put", key, value })));
      return entries.map(() => ({ ok: true as const, value: undefined }));
    },
  });
  return (key, value) => put({ key, value });
}
