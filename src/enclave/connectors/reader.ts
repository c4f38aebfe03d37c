import { DatasetDigest } from "./digest.ts";
import { ConnectorError } from "./errors.ts";
import type { Cell, Column, DatasetReader, RawRead, ReadOptions, ReadSummary, Row } from "./types.ts";

export const DEFAULT_BATCH_SIZE = 10_000;

export function batchSizeOf(options: ReadOptions): number {
  const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", "batchSize must be a positive integer");
  return size;
}

/** A cursor cell as the text a later read's `after` takes. */
export function cursorText(cell: Cell): string | undefined {
  if (cell === null || cell instanceof Uint8Array) return undefined;
  return String(cell);
}

/**
 * The shared half of every connector: counts rows, feeds the digest and
 * remembers the cursor of the last row (connectors order incremental reads
 * by the cursor column, so the last non-null value is the greatest).
 */
export function datasetReader(raw: RawRead, options: ReadOptions): DatasetReader {
  const types = raw.columns.map((c) => c.type);
  const digest = new DatasetDigest(raw.columns);
  let rowCount = 0;
  let cursor = raw.cursorIndex === undefined ? undefined : options.after;
  let summary: ReadSummary | undefined;
  let closed = false;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await raw.close();
  };

  async function* batches(): AsyncGenerator<readonly Row[]> {
    try {
      for await (const batch of raw.batches) {
        for (const row of batch) {
          digest.addRow(row, types);
          if (raw.cursorIndex !== undefined) cursor = cursorText(row[raw.cursorIndex] ?? null) ?? cursor;
        }
        rowCount += batch.length;
        if (batch.length > 0) yield batch;
      }
      summary = { columns: raw.columns, rowCount, digest: digest.digest(), cursor: raw.streamCursor ? raw.streamCursor() : cursor };
    } finally {
      await close();
    }
  }

  return {
    columns: raw.columns,
    [Symbol.asyncIterator]: batches,
    summary(): ReadSummary {
      if (!summary) throw new ConnectorError("CONNECTOR_NOT_FINISHED", "the dataset summary exists only after every batch was read; iterate the reader to the end first");
      return summary;
    },
    close,
  };
}

/** Reads everything into memory: the rows and the summary. */
export async function collect(reader: DatasetReader): Promise<ReadSummary & { rows: Row[] }> {
  const rows: Row[] = [];
  for await (const batch of reader) rows.push(...batch);
  return { ...reader.summary(), rows };
}

export function columnIndex(columns: readonly Column[], name: string): number | undefined {
  const index = columns.findIndex((c) => c.name === name);
  return index < 0 ? undefined : index;
}

/** A connector that cannot yet run over the enclave's relay refuses rather than open a socket of its own. */
export function unsupportedNetwork(type: string): ConnectorError {
  return new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `${type} connections through the enclave network are not built yet (postgres and mysql are); run this source outside the relay or use a database`, { details: { type } });
}
