/**
 * The inputs of the grant commands: the owner's datasets file (where each
 * dataset named in a grant is, with its credentials: it never leaves the
 * owner's machine but sealed to enclaves), times given as an ISO time or a
 * duration, grant ids in decimal or hex, and grant documents by file or CID.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { Address, Hex } from "viem";
import { datasetId } from "../protocol/grants.ts";
import { chainViewSchema, datasetConnectionSchema, parseGrantDocument, type GrantDocument, type GrantedDataset } from "../protocol/operate.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { UsageError } from "./errors.ts";

export const datasetsEnvVar = "CLOISTER_DATASETS";
export const defaultDatasetsFile = "cloister-datasets.json";

const datasetsFileSchema = z.record(z.string().min(1), z.object({ table: z.string().min(1), connection: datasetConnectionSchema, chainView: chainViewSchema.optional() }).strict());
type DatasetsFile = z.infer<typeof datasetsFileSchema>;

/** The owner's datasets file (`--datasets`, else CLOISTER_DATASETS, else ./cloister-datasets.json); undefined when `optional` and there is none. */
async function readDatasetsFile(file: string | undefined, optional: boolean): Promise<{ path: string; datasets: DatasetsFile } | undefined> {
  const path = file ?? process.env[datasetsEnvVar] ?? defaultDatasetsFile;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    if (missing && optional && file === undefined) return undefined;
    throw new UsageError(
      missing
        ? `no datasets file at ${path}: write one mapping each dataset name to {"table": ..., "connection": {"type": "postgres" | "mysql", "url": ...} or {"type": "duckdb", "path": ...}} (docs/pipelines.md, "Datasets"), and pass it with --datasets`
        : `the datasets file ${path} ${error instanceof SyntaxError ? "is not valid JSON" : "cannot be read"}: ${(error as Error).message}`,
    );
  }
  const parsed = datasetsFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // The path only: a connection URL may carry a password.
    throw new UsageError(`the datasets file ${path} is not usable at ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  return { path, datasets: parsed.data };
}

function granted(name: string, entry: DatasetsFile[string], registry: Address): GrantedDataset {
  return { name, table: entry.table, connection: entry.connection, registry, ...(entry.chainView ? { chainView: entry.chainView } : {}) };
}

/** The dataset of the owner's datasets file whose datasetId is `id`; undefined when the file names none (or there is no file). */
export async function datasetByIdFromFile(id: Hex, file: string | undefined, registry: Address): Promise<GrantedDataset | undefined> {
  const found = await readDatasetsFile(file, true);
  const name = found && Object.keys(found.datasets).find((n) => datasetId(n).toLowerCase() === id.toLowerCase());
  return name === undefined ? undefined : granted(name, found!.datasets[name]!, registry);
}

/** The dataset `name` of the owner's datasets file. */
export async function datasetFromFile(name: string, file: string | undefined, registry: Address): Promise<GrantedDataset> {
  const { path, datasets } = (await readDatasetsFile(file, false))!;
  const entry = datasets[name];
  if (!entry) throw new UsageError(`the datasets file ${path} names no dataset '${name}'; it names ${Object.keys(datasets).join(", ") || "none"}`);
  return granted(name, entry, registry);
}

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Unix seconds of `value`: an ISO 8601 time, or a duration ("90s", "30m", "12h", "7d", "2w") after `now`. */
export function parseTimeOrDuration(value: string, flag: string, now: number): number {
  const duration = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  if (duration) return now + Number(duration[1]) * units[duration[2]!]!;
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new UsageError(`${flag} takes an ISO time (2026-12-31T23:00:00Z) or a duration such as 30m, 12h or 7d, got '${value}'`);
  }
  return Math.floor(ms / 1000);
}

/** A grant id in decimal or 0x hex. */
export function parseGrantId(value: string | undefined): bigint {
  if (value === undefined) throw new UsageError("give the grant's id (as 'cloister grant create' or 'grant list' printed it)");
  if (!/^(0x[0-9a-fA-F]{1,64}|[0-9]{1,78})$/.test(value)) throw new UsageError(`a grant id is a number in decimal or 0x hex, got '${value}'`);
  return BigInt(value);
}

export function grantIdHex(id: bigint): string {
  return `0x${id.toString(16).padStart(64, "0")}`;
}

/** A grant document from a file, or from IPFS by CID when no such file exists. */
export async function loadGrantDocument(source: string, store: Pick<BlobStore, "get">): Promise<GrantDocument> {
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new UsageError(`cannot read the grant document ${source}: ${(error as Error).message}`);
    if (!/^(bafy|bafk|Qm)[0-9a-zA-Z]+$/.test(source)) throw new UsageError(`no grant document at ${source}: pass the file or the CID 'cloister grant create' printed`);
    text = new TextDecoder().decode(await store.get(source));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`the grant document ${source} is not JSON; pass the file or the CID 'cloister grant create' printed`);
  }
  return parseGrantDocument(json, source);
}
