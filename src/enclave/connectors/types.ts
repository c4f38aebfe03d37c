import type { EnclaveNet, Pin } from "../net/connect.ts";

/**
 * The one interface every data connector implements, shared by clean-room
 * parties (issue 13) and pipeline sources (issue 14).
 *
 * A read is a stream of batches of typed rows. Every connector maps its
 * source's types onto the few column types below, and its values onto the
 * matching cell representation, so the dataset digest (digest.ts) means the
 * same thing whatever the source.
 */

/** Column types and the cell each one holds (null is allowed in every column). */
export type ColumnType =
  | "boolean" // boolean
  | "integer" // bigint, any width
  | "float" // number (IEEE 754 double)
  | "decimal" // string, the exact decimal text ("12.50")
  | "text" // string
  | "date" // string, as the source renders it ("2026-12-03")
  | "timestamp" // string, as the source renders it
  | "json" // string, the JSON text
  | "bytes"; // Uint8Array

export type Cell = null | boolean | bigint | number | string | Uint8Array;
export type Row = readonly Cell[];

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
}

/**
 * Database connections through the enclave's own network (src/enclave/net):
 * the bytes cross the host's relay, TLS runs inside the enclave and the
 * server certificate must match `pin`. Built for postgres and mysql; without it a
 * connector opens a plain socket (tests, and nodes that run connectors
 * outside an enclave).
 */
export interface ConnectorNetwork {
  net: Pick<EnclaveNet, "postgres" | "mysql">;
  pin: Pin;
}

export interface ReadOptions {
  network?: ConnectorNetwork;
  /**
   * Read only rows whose cursor column is greater than this value (the
   * `cursor` a previous read returned). Needs a cursor: the descriptor's
   * `cursor` column, or the stream sequence for nats.
   */
  after?: string;
  /** Rows per batch; 10,000 by default. */
  batchSize?: number;
}

export interface ReadSummary {
  readonly columns: readonly Column[];
  readonly rowCount: number;
  /** Hex SHA-256 over the canonical encoding of the columns and every row, in read order (digest.ts). */
  readonly digest: string;
  /**
   * Where the next incremental read starts: the greatest cursor value read,
   * or `after` again when no row was read; undefined without a cursor.
   */
  readonly cursor: string | undefined;
}

export interface DatasetReader extends AsyncIterable<readonly Row[]> {
  /** Known before the first batch. */
  readonly columns: readonly Column[];
  /** The count, digest and cursor; throws CONNECTOR_NOT_FINISHED before the batches are exhausted. */
  summary(): ReadSummary;
  /** Releases the connection early; iteration to the end closes it too. */
  close(): Promise<void>;
}

/** What a connector produces before the shared reader counts, hashes and tracks the cursor. */
export interface RawRead {
  readonly columns: readonly Column[];
  /** Index of the cursor column in `columns`, if the read is incremental. */
  readonly cursorIndex: number | undefined;
  readonly batches: AsyncIterable<readonly Row[]>;
  /** A cursor that is not a column (nats: the last stream sequence read), asked once the batches end. */
  readonly streamCursor?: () => string | undefined;
  close(): Promise<void>;
}
