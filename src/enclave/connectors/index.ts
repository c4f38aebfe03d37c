import { parseDescriptor, type ConnectorDescriptor } from "./descriptor.ts";
import { openFile } from "./duckdb-file.ts";
import { openMysql } from "./mysql.ts";
import { openNats } from "./nats.ts";
import { openPostgres } from "./postgres.ts";
import { datasetReader } from "./reader.ts";
import type { DatasetReader, RawRead, ReadOptions } from "./types.ts";

export { ConnectorError, type ConnectorErrorCode } from "./errors.ts";
export { parseDescriptor, parseDestination, connectorDescriptorSchema, destinationDescriptorSchema, type ConnectorDescriptor, type ConnectorType, type DestinationDescriptor } from "./descriptor.ts";
export { writeRows, type WriteSummary } from "./write.ts";
export { DatasetDigest, datasetDigest } from "./digest.ts";
export { collect } from "./reader.ts";
export { redactUrl } from "./redact.ts";
export type { Cell, Column, ColumnType, DatasetReader, ReadOptions, ReadSummary, Row } from "./types.ts";

export interface OpenOptions extends ReadOptions {
  /** The folder relative file paths resolve against (the collaboration or pipeline file's folder). */
  baseDir?: string;
}

/**
 * Opens a dataset for reading: checks the descriptor (unknown input is
 * parsed here), connects, and returns a reader whose columns are known and
 * whose batches stream. Kafka and Hive are not connector types (no server to
 * test them against); adding one means a descriptor schema and an open
 * function returning a RawRead.
 */
export async function openDataset(descriptor: ConnectorDescriptor | unknown, options: OpenOptions = {}): Promise<DatasetReader> {
  const parsed = parseDescriptor(descriptor);
  let raw: RawRead;
  switch (parsed.type) {
    case "csv":
    case "parquet":
      raw = await openFile(parsed, options, options.baseDir);
      break;
    case "postgres":
      raw = await openPostgres(parsed, options);
      break;
    case "mysql":
      raw = await openMysql(parsed, options);
      break;
    case "nats":
      raw = await openNats(parsed, options);
      break;
  }
  return datasetReader(raw, options);
}
