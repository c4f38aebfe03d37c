/**
 * One pipeline run inside the enclave, on the opened spec: extract from the
 * source past the cursor, transform, load into the destination with the run
 * marker, and seal the cursor the next run starts from. The marker record
 * keeps the run's counts, digests and sealed cursor, so an attempt that finds
 * the run already loaded (a failover after the first node loaded and died,
 * or a replayed cursor) writes nothing and reports what the first attempt
 * did.
 */
import { z } from "zod";
import { toHex, fromHex } from "../../crypto/bytes.ts";
import type { PipelineSpec } from "../../protocol/pipeline-package.ts";
import { openDataset, writeRows } from "../connectors/index.ts";
import { databaseEndpoint } from "../connectors/endpoint.ts";
import { parseNatsDestination } from "../connectors/descriptor.ts";
import { writeNatsRows } from "../connectors/nats-write.ts";
import type { ReadSummary } from "../connectors/types.ts";
import type { RunMarker } from "../connectors/write.ts";
import { PipelineRunError } from "./errors.ts";
import { parseFileDestination, writeFileRows } from "./file-destination.ts";
import { openHttpsSource, writeHttpsRows, isHttps } from "./https.ts";
import { copyTransform, programTransform, sqlTransform, type Rows } from "./transform.ts";
import type { EnclaveNet } from "../net/connect.ts";

/** The table a database destination keeps its run markers in. */
export const MARKER_TABLE = "cloister_pipeline_runs";

export interface RunRecord {
  read: number;
  readDigest: string;
  transformed: number;
  written: number;
  writtenDigest: string;
  /** Hex of the sealed cursor state this run leaves. */
  cursorState: string;
}
const runRecordSchema = z.object({ read: z.number(), readDigest: z.string(), transformed: z.number(), written: z.number(), writtenDigest: z.string(), cursorState: z.string() }).strict();

export interface PipelineRunOptions {
  /** The cursor the previous run left (undefined: from the start). */
  after: string | undefined;
  runId: string;
  /** Seals the cursor state for the next run. */
  sealCursor(cursor: string | null): Uint8Array;
  /** The enclave's network, for https sources and destinations. */
  net?: EnclaveNet;
}

export interface PipelineRunResult {
  record: RunRecord;
  cursorState: Uint8Array;
  /** True when an earlier attempt had loaded this run: nothing was written now. */
  resumed: boolean;
}

export async function runPipeline(spec: PipelineSpec, options: PipelineRunOptions): Promise<PipelineRunResult> {
  const https = isHttps(spec.source);
  const source = https ? undefined : databaseEndpoint(spec.source, options.net);
  const reader = https
    ? await openHttpsSource(spec.source, { after: options.after, net: options.net })
    : await openDataset(source!.descriptor, { after: options.after, ...(source!.network ? { network: source!.network } : {}) });
  let transformed: Rows | undefined;
  try {
    const t = spec.transform;
    transformed =
      t.kind === "sql" ? await sqlTransform(t.sql, reader.columns, reader) : t.kind === "program" ? await programTransform(t.source, t.name, reader.columns, reader) : copyTransform(reader.columns, reader);
    let recorded: { record: RunRecord; cursorState: Uint8Array } | undefined;
    const rows = transformed;
    const marker = {
      table: MARKER_TABLE,
      runId: options.runId,
      /** Called once the rows are written, before the marker is inserted; seals the cursor once. */
      record(written: { rowCount: number; digest: string }): string {
        if (!recorded) {
          const read: ReadSummary = reader.summary();
          const cursorState = options.sealCursor(read.cursor ?? null);
          const record: RunRecord = { read: read.rowCount, readDigest: read.digest, transformed: rows.count(), written: written.rowCount, writtenDigest: written.digest, cursorState: toHex(cursorState) };
          recorded = { record, cursorState };
        }
        return JSON.stringify(recorded.record);
      },
    };
    const dest = spec.destination;
    const summary =
      dest.type === "csv" || dest.type === "parquet"
        ? await writeFileRows(parseFileDestination(dest), rows.columns, rows.batches, marker)
        : isHttps(dest)
          ? await writeHttpsRows(dest, rows.columns, rows.batches, marker, options.net)
          : dest.type === "nats"
            ? await writeNatsRows(parseNatsDestination(dest), rows.columns, rows.batches, marker)
            : await writeDatabase(dest, rows, marker, options.net);
    if (summary.resumed !== undefined) {
      const parsed = runRecordSchema.safeParse(JSON.parse(summary.resumed));
      if (!parsed.success) throw new PipelineRunError("PIPELINE_LOAD_FAILED", `the destination's run marker for run ${options.runId} is malformed; it was altered outside the pipeline`);
      return { record: parsed.data, cursorState: fromHex(parsed.data.cursorState), resumed: true };
    }
    if (!recorded) throw new PipelineRunError("PIPELINE_LOAD_FAILED", "the destination wrote without recording the run marker");
    return { ...recorded, resumed: false };
  } finally {
    await transformed?.close();
    await reader.close();
  }
}

function writeDatabase(dest: PipelineSpec["destination"], rows: Rows, marker: RunMarker, net: EnclaveNet | undefined) {
  const { descriptor, network } = databaseEndpoint(dest, net);
  return writeRows(descriptor, rows.columns, rows.batches, { marker, ...(network ? { network } : {}) });
}
