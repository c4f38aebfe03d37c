/**
 * The NATS JetStream destination: each row one JSON object (json-cell.ts)
 * published on the destination's subject, which the stream must capture,
 * with a message id of `<run id>:<row>`, so that JetStream drops a message
 * published twice within the stream's duplicate window (two candidates
 * loading one run at once). The run marker is a key of a JetStream
 * key-value bucket (the marker's table name), created once the rows are
 * acknowledged: `create` succeeds for one writer only, and a load that finds
 * the key writes nothing and returns the marker's record.
 *
 * Weaker than a database's marker, and said so in docs/pipelines.md: the
 * rows and the marker are not one transaction, so a load repeated after the
 * duplicate window (default 2 minutes) whose first attempt published but
 * died before the marker appends the run's rows again.
 */
import type { KV, NatsConnection } from "nats";
import type { NatsDestination } from "./descriptor.ts";
import { DatasetDigest } from "./digest.ts";
import { ConnectorError } from "./errors.ts";
import { jsonCell } from "./json-cell.ts";
import { connectNats, DEFAULT_NATS_URL, natsError } from "./nats.ts";
import { redactUrl } from "./redact.ts";
import type { Column, Row } from "./types.ts";
import type { RunMarker, WriteSummary } from "./write.ts";

/** Publishes in flight at once: enough to keep the server busy without holding a whole run in memory. */
const PUBLISH_WINDOW = 256;

async function markerRecord(kv: KV, runId: string): Promise<string | undefined> {
  const entry = await kv.get(runId);
  return entry && entry.operation === "PUT" ? entry.string() : undefined;
}

export async function writeNatsRows(dest: NatsDestination, columns: readonly Column[], batches: AsyncIterable<readonly Row[]>, marker: RunMarker): Promise<WriteSummary> {
  const url = dest.url ?? DEFAULT_NATS_URL;
  const nc: NatsConnection = await connectNats(url, dest.stream);
  try {
    const js = nc.jetstream();
    const kv = await js.views.kv(marker.table, { history: 1 });
    const done = await markerRecord(kv, marker.runId);
    if (done !== undefined) return { rowCount: 0, digest: "", created: false, resumed: done };

    const encoder = new TextEncoder();
    const digest = new DatasetDigest(columns);
    const types = columns.map((c) => c.type);
    const inFlight: Promise<unknown>[] = [];
    let rowCount = 0;
    for await (const batch of batches) {
      for (const row of batch) {
        if (row.length !== columns.length) throw new ConnectorError("CONNECTOR_BAD_ROW", `row ${rowCount + 1} has ${row.length} cells for ${columns.length} columns`, { details: { row: rowCount + 1 } });
        digest.addRow(row, types);
        const body = encoder.encode(JSON.stringify(Object.fromEntries(columns.map((c, i) => [c.name, jsonCell(row[i]!)]))));
        inFlight.push(js.publish(dest.subject, body, { msgID: `${marker.runId}:${rowCount}`, expect: { streamName: dest.stream } }));
        rowCount++;
        if (inFlight.length >= PUBLISH_WINDOW) await Promise.all(inFlight.splice(0));
      }
    }
    await Promise.all(inFlight);
    const written = { rowCount, digest: digest.digest() };
    try {
      await kv.create(marker.runId, encoder.encode(marker.record(written)));
    } catch (error) {
      // Another writer of the same run marked it first: its rows and ours had the same message ids.
      const theirs = await markerRecord(kv, marker.runId);
      if (theirs === undefined) throw error;
      return { rowCount: 0, digest: "", created: false, resumed: theirs };
    }
    return { ...written, created: false };
  } catch (error) {
    if (error instanceof ConnectorError) throw error;
    if (/no responders|503/i.test(String((error as Error).message))) {
      throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `NATS at ${redactUrl(url)}: no JetStream stream captures subject "${dest.subject}" (or stream "${dest.stream}" is missing); create the stream with that subject`, { details: { stream: dest.stream, subject: dest.subject }, cause: error });
    }
    throw natsError(error, url, dest.stream);
  } finally {
    await nc.close().catch(() => undefined);
  }
}
