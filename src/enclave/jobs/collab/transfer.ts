/**
 * How a partner's rows reach the compute enclave: over one mutual attested TLS connection (the partner
 * connects to the compute enclave's listener through both hosts' relays; each side checks the other's
 * attested certificate), as length-prefixed messages (net/messages.ts), each a structured-clone value:
 *
 *   partner -> compute   { v: 2, collaborationId, runId, party, termsHash, datasets: [{ name, columns, of?, filter? }] }
 *                                                           (`of: "file"`: sent as vectors; `filter`: only the rows
 *                                                           the approved query's own conditions keep, row-filter.ts)
 *                        { d, rows }                        batches of dataset d, in read order (a connector's rows)
 *                        { d, chunks: [{ n, cols }] }       or DuckDB vectors' bytes, column by column (a file read
 *                                                           in place; its columns announced with their DuckDB type,
 *                                                           `vector`; each column as wire-vectors.ts describes)
 *                        { d, end: true, digest, rowCount } after dataset d's last batch
 *                        { done: true }
 *   compute -> partner   { ok: true } | { error: "<code>: <message>" }
 *
 * The peer on each end is an attested enclave whose certificate key is the one its verified evidence binds,
 * so a message's origin is the attested partner; the compute enclave still checks each message's shape.
 */
import { deserialize, serialize } from "node:v8";
import type { Hex } from "viem";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import { ConnectorError, openDataset, parseDescriptor, type Column, type Row } from "../../connectors/index.ts";
import { resolveFilePath } from "../../connectors/duckdb-file.ts";
import { databaseEndpoint } from "../../connectors/endpoint.ts";
import type { EnclaveNet } from "../../net/connect.ts";
import type { MessageStream } from "../../net/messages.ts";
import { BATCH_ROWS, TableLoader, type LoadedDataset } from "./datasets.ts";
import { CollabJobError } from "./errors.ts";
import { columnTypeOf, isVectorType, vectorTypeOf, VectorLoader, type VectorType } from "./vector-loader.ts";
import { encodeChunk, type WireColumn } from "./wire-vectors.ts";
import { quoteIdent } from "../../cleanroom/sql-ast.ts";
import { CleanRoomPolicyError } from "../../cleanroom/errors.ts";
import { checkUnchanged, fileIdentity, type FileIdentity } from "./file-identity.ts";
import { DuckDBInstance, type DuckDBConnection, type DuckDBResult } from "@duckdb/node-api";

/** Largest message: one batch of BATCH_ROWS rows with wide text cells. */
export const MAX_TRANSFER_MESSAGE = 64 * 1024 * 1024;

/** The transfer's format: 2 since file vectors cross as bytes (wire-vectors.ts). */
export const TRANSFER_VERSION = 2 as const;

export interface TransferHeader {
  v: typeof TRANSFER_VERSION;
  collaborationId: string;
  runId: number;
  party: number;
  termsHash: Hex;
}

const columnTypes = new Set(["boolean", "integer", "float", "decimal", "text", "date", "timestamp", "json", "bytes"]);

/** A DuckDB instance for reading a party's own files (no extension is installed or loaded). */
export function fileReaderInstance(): Promise<DuckDBInstance> {
  return DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
}

/**
 * Partner side: opens every dataset (a file DuckDB reads here, or its connector); done while the connection
 * to the compute enclave is being made. Nothing is sent yet. With `columns` (projection.ts), a file's reader
 * keeps only the columns of those names (every column when none of them is in the file). Files are read by
 * one DuckDB instance, a connection each: `reader` when the job started one earlier (the Sources then own it,
 * and close it even when opening fails), else one made here.
 */
export async function openSources(
  descriptors: Record<string, Record<string, unknown>>,
  baseDir: string | undefined,
  net?: EnclaveNet,
  columns?: ReadonlySet<string>,
  reader?: Promise<DuckDBInstance>,
  filters?: ReadonlyMap<string, string>,
): Promise<Sources> {
  const list: Source[] = [];
  let files = reader;
  const fileReader = () => (files ??= fileReaderInstance());
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const source of list) await (source.kind === "rows" ? source.reader.close() : source.close());
    await files?.then((instance) => instance.closeSync(), () => {});
  };
  try {
    for (const [name, descriptor] of Object.entries(descriptors)) list.push(await openSource(name, descriptor, baseDir, net, { columns, filter: filters?.get(name.toLowerCase()) }, fileReader));
  } catch (e) {
    await close();
    throw e;
  }
  return { list, close };
}

export interface Sources {
  readonly list: readonly Source[];
  /** Releases every source and the files' DuckDB instance; once (after the transfer: freeing them takes a few ms). */
  close(): Promise<void>;
}

/** Partner side: streams each opened dataset; returns what was sent (digest and count per dataset). */
export async function sendDatasets(stream: MessageStream, header: TransferHeader, party: string, { list: sources }: Sources): Promise<LoadedDataset[]> {
  await stream.send(serialize({ ...header, datasets: sources.map((x) => ({ name: x.name, columns: x.columns, ...(x.kind === "file" ? { of: "file", ...(x.filter ? { filter: x.filter } : {}) } : {}) })) }));
  const sent: LoadedDataset[] = [];
  for (const [d, source] of sources.entries()) {
    if (source.kind === "rows") {
      for await (const rows of source.reader) await stream.send(serialize({ d, rows }));
      const { digest, rowCount } = source.reader.summary();
      await stream.send(serialize({ d, end: true, digest: `0x${digest}`, rowCount }));
      sent.push({ party, name: source.name, digest: `0x${digest}`, rowCount });
      continue;
    }
    // A file DuckDB reads here: its vectors' bytes go out column by column, a few chunks a message.
    const types = source.columns.map((c) => c.vector);
    let rowCount = 0;
    let group: { n: number; cols: WireColumn[] }[] = [];
    let groupRows = 0;
    // The next chunk is read (on DuckDB's threads) while this one is converted and sent.
    let next = readChunk(source);
    try {
      for (;;) {
        const chunk = await next;
        if (!chunk || chunk.rowCount === 0) break;
        next = readChunk(source);
        group.push({ n: chunk.rowCount, cols: encodeChunk(chunk.chunk, chunk.rowCount, types) });
        groupRows += chunk.rowCount;
        rowCount += chunk.rowCount;
        if (groupRows >= BATCH_ROWS) {
          await stream.send(serialize({ d, chunks: group }));
          group = [];
          groupRows = 0;
        }
      }
      if (group.length > 0) await stream.send(serialize({ d, chunks: group }));
    } finally {
      // No read may be running on the connection when it closes (Sources.close, once the compute enclave answered).
      await next.catch(() => {});
    }
    const digest = await source.digest;
    await stream.send(serialize({ d, end: true, digest, rowCount }));
    sent.push({ party, name: source.name, digest, rowCount, of: "file", ...(source.filter ? { filter: source.filter } : {}) });
  }
  await stream.send(serialize({ done: true }));
  const reply = await stream.receive();
  const answer = reply ? (deserialize(reply) as { ok?: boolean; error?: string }) : { error: "COLLAB_TRANSFER_INVALID: the compute enclave closed the connection" };
  if (answer.ok !== true) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `the compute enclave did not accept ${party}'s rows: ${String(answer.error ?? "no answer")}`);
  // Accepted: whether the closing handshake completes no longer matters.
  await stream.end().catch(() => {});
  return sent;
}

/**
 * The next chunk of a file's read. A filtered read evaluates the approved query's conditions on the file's
 * rows: DuckDB's error may quote a row value, so it is not disclosed (as the compute enclave does for the query).
 */
function readChunk(source: Extract<Source, { kind: "file" }>) {
  const next = source.result.fetchChunk();
  if (!source.filter) return next;
  return next.catch(() => {
    throw new CleanRoomPolicyError("QUERY_FAILED", `the approved query's conditions on ${source.name} failed on its rows; the error is not disclosed because it may quote row values`, { details: { rule: "query errors are not disclosed" } });
  });
}

function message(bytes: Uint8Array | null, party: string): Record<string, unknown> {
  if (!bytes) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} ended its connection before its last dataset`);
  try {
    const value = deserialize(bytes) as unknown;
    if (typeof value === "object" && value !== null) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} sent a message that does not decode`);
}

/** Compute side: checks the header against this run and the party, loads each dataset as it arrives, answers. */
export async function receiveDatasets(
  stream: MessageStream,
  instance: DuckDBInstance,
  expected: TransferHeader,
  party: string,
  reserve: (name: string) => void,
  filters: Promise<ReadonlyMap<string, string>>,
  onTables?: () => void,
): Promise<LoadedDataset[]> {
  const header = message(await stream.receive(), party);
  if (header.v !== TRANSFER_VERSION || header.collaborationId !== expected.collaborationId || header.runId !== expected.runId || header.party !== expected.party || header.termsHash !== expected.termsHash) {
    throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party}'s enclave sent rows for another collaboration, run or party`);
  }
  const datasets = header.datasets as Announced[];
  if (!Array.isArray(datasets) || datasets.length === 0) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} announced no dataset`);
  // A connection per source: tables of one in-memory database, loaded side by side.
  const connection = await instance.connect();
  try {
    return await receiveInto(stream, connection, datasets, party, reserve, await filters, onTables);
  } finally {
    connection.closeSync();
  }
}

/** A dataset as a partner announces it: a file's columns carry their DuckDB type (`vector`) and arrive as chunks; other sources' as rows. */
interface Announced {
  name: unknown;
  columns: (Column & { vector?: unknown })[];
  of?: unknown;
  /** A file's rows the approved query's own conditions keep (row-filter.ts): exactly the filter this enclave derives for the dataset. */
  filter?: unknown;
}

type Loader = { kind: "rows"; rows: TableLoader } | { kind: "vectors"; vectors: VectorLoader };

async function beginLoad(connection: DuckDBConnection, d: Announced, party: string, filters: ReadonlyMap<string, string>): Promise<Loader> {
  const name = d.name as string;
  const vectors = d.of === "file";
  if (d.filter !== undefined && !(vectors && d.filter === filters.get(name.toLowerCase()))) {
    throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} announced a filter on ${name} that is not the approved query's own conditions on it`);
  }
  const ok =
    /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) &&
    Array.isArray(d.columns) &&
    d.columns.length > 0 &&
    d.columns.every((c) => typeof c.name === "string" && columnTypes.has(c.type) && (vectors ? isVectorType(c.vector) && columnTypeOf(c.vector) === c.type : c.vector === undefined));
  if (!ok) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} announced a malformed dataset`);
  if (vectors) return { kind: "vectors", vectors: await VectorLoader.begin(connection, name, d.columns as VectorColumn[]) };
  return { kind: "rows", rows: await TableLoader.begin(connection, name, d.columns) };
}

async function receiveInto(
  stream: MessageStream,
  connection: DuckDBConnection,
  datasets: Announced[],
  party: string,
  reserve: (name: string) => void,
  filters: ReadonlyMap<string, string>,
  onTables: (() => void) | undefined,
): Promise<LoadedDataset[]> {
  const loaders: Loader[] = [];
  const names: string[] = [];
  for (const d of datasets) {
    if (typeof d.name !== "string") throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} announced a malformed dataset`);
    reserve(d.name);
    names.push(d.name);
    loaders.push(await beginLoad(connection, d, party, filters));
  }
  onTables?.();
  const loaded: LoadedDataset[] = [];
  for (;;) {
    const m = message(await stream.receive(), party);
    if (m.done === true) break;
    const loader = typeof m.d === "number" ? loaders[m.d] : undefined;
    if (!loader) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} sent rows of an unannounced dataset`);
    const name = names[m.d as number]!;
    if (m.end === true) {
      const rowCount = loader.kind === "rows" ? loader.rows.rows : loader.vectors.rows;
      if (m.rowCount !== rowCount || typeof m.digest !== "string" || !/^0x[0-9a-f]{64}$/.test(m.digest)) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party}'s dataset ${name} ends with another count than it sent`);
      if (loader.kind === "rows") await loader.rows.finish();
      else loader.vectors.finish();
      const filter = datasets[m.d as number]!.filter;
      loaded.push({ party, name, digest: m.digest, rowCount, ...(loader.kind === "vectors" ? { of: "file" as const } : {}), ...(typeof filter === "string" ? { filter } : {}) });
      continue;
    }
    if (loader.kind === "vectors") {
      if (!Array.isArray(m.chunks)) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} sent rows of ${name}, announced as vectors`);
      for (const chunk of m.chunks as { n?: unknown; cols?: unknown }[]) {
        const problem = Array.isArray(chunk?.cols) ? loader.vectors.append(chunk.cols, chunk.n) : "no columns";
        if (problem) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} sent a malformed chunk of ${name}: ${problem}`);
      }
      continue;
    }
    const rows = m.rows as Row[];
    const width = datasets[m.d as number]!.columns.length;
    if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r) && r.length === width)) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} sent a malformed batch of ${name}`);
    loader.rows.append(rows);
  }
  if (loaded.length !== loaders.length) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} finished before ending every dataset`);
  return loaded;
}

/** The compute party's own datasets as the query will see them, and the files it reads where they lie. */
export interface OwnDatasets {
  datasets: LoadedDataset[];
  /** Parquet files the query reads in place (views): its DuckDB must be allowed exactly these, checked unchanged after it ran. */
  inPlace: FileIdentity[];
}

/** The compute party's own datasets: read through the connectors inside this enclave, loaded as they are read, or (parquet) queried in place. */
export async function loadOwnDatasets(instance: DuckDBInstance, party: string, descriptors: Record<string, Record<string, unknown>>, baseDir: string | undefined, reserve: (name: string) => void, net?: EnclaveNet): Promise<OwnDatasets> {
  const out: OwnDatasets = { datasets: [], inPlace: [] };
  const connection = await instance.connect();
  try {
    await loadInto(connection, out, party, descriptors, baseDir, reserve, net);
  } finally {
    connection.closeSync();
  }
  return out;
}

async function loadInto(connection: DuckDBConnection, out: OwnDatasets, party: string, descriptors: Record<string, Record<string, unknown>>, baseDir: string | undefined, reserve: (name: string) => void, net: EnclaveNet | undefined): Promise<void> {
  for (const [name, pinned] of Object.entries(descriptors)) {
    reserve(name);
    const { descriptor, network } = databaseEndpoint(pinned, net);
    const parsed = parseDescriptor(descriptor);
    if ((parsed.type === "csv" || parsed.type === "parquet") && parsed.cursor === undefined) {
      const { dataset, inPlace } = await loadFileInPlace(connection, party, name, parsed.type, resolveFilePath(parsed.path, baseDir));
      out.datasets.push(dataset);
      if (inPlace) out.inPlace.push(inPlace);
      continue;
    }
    const reader = await openDataset(descriptor, { ...(baseDir ? { baseDir } : {}), ...(network ? { network } : {}), batchSize: BATCH_ROWS });
    const loader = await TableLoader.begin(connection, name, reader.columns);
    for await (const rows of reader) loader.append(rows);
    await loader.finish();
    const { digest, rowCount } = reader.summary();
    out.datasets.push({ party, name, digest: `0x${digest}`, rowCount });
  }
}

/**
 * The compute party's own csv or parquet file, read by DuckDB (no rows through JavaScript): its digest is the
 * SHA-256 of the file's bytes (`of: "file"` in the provenance), not the connector's row encoding. A parquet
 * file is not loaded: a view reads it where it lies, so its rows are read once, by the approved query, after
 * the partners' transfer instead of competing with it for the cores; its row count is its footer's. A csv file
 * is loaded into a table (counting its rows parses it anyway). The file's identity is taken before it is
 * hashed and compared after its last read (here for a csv file, after the query for a parquet one): a file
 * replaced or written meanwhile is refused (file-identity.ts). The file is the compute party's own, on its own machine.
 */
async function loadFileInPlace(connection: DuckDBConnection, party: string, name: string, type: "csv" | "parquet", path: string): Promise<{ dataset: LoadedDataset; inPlace?: FileIdentity }> {
  if (!existsSync(path)) {
    throw new ConnectorError("CONNECTOR_FILE_NOT_FOUND", `${type} file ${path} does not exist; check the descriptor's path (relative paths resolve against the collaboration file's folder)`, { details: { path } });
  }
  const identity = await fileIdentity(path);
  // The file is hashed while DuckDB reads it (its own threads).
  const hashing = fileSha256(path);
  hashing.catch(() => {});
  const table = quoteIdent(name);
  const read = fileRead(type, path);
  let rowCount;
  try {
    if (type === "parquet") {
      await connection.run(`CREATE VIEW ${table} AS SELECT * FROM ${read}`);
      rowCount = (await connection.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRowsJS()[0]![0];
    } else {
      // CREATE TABLE AS reports the row count.
      rowCount = (await connection.runAndReadAll(`CREATE TABLE ${table} AS SELECT * FROM ${read}`)).getRowsJS()[0]?.[0];
      if (typeof rowCount !== "bigint") rowCount = (await connection.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRowsJS()[0]![0];
    }
  } catch (error) {
    throw new ConnectorError("CONNECTOR_QUERY_FAILED", `could not read ${type} file ${path}: ${(error as Error).message.split("\n")[0]}`, { details: { path } });
  }
  const digest = await hashing;
  const dataset: LoadedDataset = { party, name, digest, rowCount: Number(rowCount), of: "file" };
  if (type === "parquet") return { dataset, inPlace: identity };
  await checkUnchanged(identity);
  return { dataset };
}

/** A SQL string literal. */
export const sqlString = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The table function that reads a csv or parquet file at `path`, as SQL. */
const fileRead = (type: "csv" | "parquet", path: string) => `${type === "csv" ? "read_csv" : "read_parquet"}(${sqlString(path)})`;

/** The SHA-256 of a file's bytes, as a 0x-prefixed hex digest. */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await open(path);
  try {
    // 1 MiB reads (fewer turns of the event loop, which also serves the transfer) into one buffer: a fresh buffer per
    // read (createReadStream) cost each MiB's page faults, about three times the hashing itself.
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return `0x${hash.digest("hex")}`;
}

/** The select list keeping a file's columns named in `columns`, or `*` when it names none of them. */
async function projection(connection: DuckDBConnection, read: string, columns: ReadonlySet<string>): Promise<string> {
  const names = (await connection.runAndReadAll(`SELECT * FROM ${read} LIMIT 0`)).columnNames();
  const kept = names.filter((n) => columns.has(n.toLowerCase()));
  return kept.length > 0 ? kept.map(quoteIdent).join(", ") : "*";
}

type Source =
  | { kind: "rows"; name: string; columns: readonly Column[]; reader: Awaited<ReturnType<typeof openDataset>> }
  | { kind: "file"; name: string; columns: VectorColumn[]; digest: Promise<string>; result: DuckDBResult; close: () => void; filter?: string };

/** A column sent as vectors: its column type and the DuckDB type the compute enclave loads it as. */
type VectorColumn = Column & { vector: VectorType };

/** What of a file is sent: the columns the query names (projection.ts) and the rows its conditions keep (row-filter.ts). */
interface FileSelection {
  columns?: ReadonlySet<string> | undefined;
  /** `SELECT * FROM <dataset> [AS alias] WHERE …`, read over a view of the file named after the dataset. */
  filter?: string | undefined;
}

/**
 * A partner's dataset as it will be sent: a csv or parquet file (no cursor) whose columns all have plain types
 * is read by DuckDB and sent column by column (its digest: SHA-256 of the file's bytes, `of: "file"`), only
 * the rows the query's conditions keep when they apply to this file (a filter that does not bind on the file
 * is dropped: the compute enclave's query, which carries the same conditions, reports the problem); any
 * other source through its connector, row by row (the connector's row digest).
 */
async function openSource(
  name: string,
  pinned: Record<string, unknown>,
  baseDir: string | undefined,
  net: EnclaveNet | undefined,
  selection: FileSelection,
  fileReader: () => Promise<DuckDBInstance>,
): Promise<Source> {
  const { descriptor, network } = databaseEndpoint(pinned, net);
  const parsed = parseDescriptor(descriptor);
  if ((parsed.type === "csv" || parsed.type === "parquet") && parsed.cursor === undefined) {
    const path = resolveFilePath(parsed.path, baseDir);
    if (existsSync(path)) {
      const instance = await fileReader();
      const connection = await instance.connect();
      let open = true;
      const close = () => {
        if (!open) return;
        open = false;
        connection.closeSync();
      };
      try {
        const read = fileRead(parsed.type, path);
        const select = selection.columns ? await projection(connection, read, selection.columns) : "*";
        const filtered = selection.filter ? await streamFiltered(connection, name, read, select, selection.filter) : undefined;
        const result = filtered ?? (await connection.stream(`SELECT ${select} FROM ${read}`));
        const types = result.columnTypes().map(vectorTypeOf);
        if (types.every((t) => t !== undefined)) {
          const columns = result.columnNames().map((n, i) => ({ name: n, type: columnTypeOf(types[i]!), vector: types[i]! }));
          // Hashed while the file's vectors are sent; the digest goes out after the last of them.
          const digest = fileSha256(path);
          digest.catch(() => {});
          return { kind: "file", name, columns, digest, result, close, ...(filtered ? { filter: selection.filter } : {}) };
        }
      } catch {
        // The connector reports the problem below, in its own words.
      }
      close();
    }
  }
  const reader = await openDataset(descriptor, { ...(baseDir ? { baseDir } : {}), ...(network ? { network } : {}), batchSize: BATCH_ROWS });
  return { kind: "rows", name, columns: reader.columns, reader };
}

/** The file's rows the filter keeps, over a view of the file named after the dataset; undefined when the filter does not bind on this file. */
async function streamFiltered(connection: DuckDBConnection, name: string, read: string, select: string, filter: string): Promise<DuckDBResult | undefined> {
  try {
    await connection.run(`CREATE TEMP VIEW ${quoteIdent(name)} AS SELECT * FROM ${read}`);
    return await connection.stream(`SELECT ${select} FROM (${filter})`);
  } catch {
    return undefined;
  }
}
