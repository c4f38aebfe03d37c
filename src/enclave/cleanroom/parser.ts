import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";

/**
 * One DuckDB instance per process for work on SQL text alone (parsing and checking approved queries, the
 * list of built-in functions): it holds no table, loads no extension, and can reach no file or network, so
 * sharing it between jobs shares nothing of theirs. Creating an instance per check cost each job ~10 ms.
 */
let shared: Promise<DuckDBInstance> | undefined;

async function create(): Promise<DuckDBInstance> {
  const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false" });
  const connection = await instance.connect();
  try {
    await connection.run("SET enable_external_access = false");
    await connection.run("SET lock_configuration = true");
  } finally {
    connection.closeSync();
  }
  return instance;
}

/** Runs `use` on a fresh connection of the shared parser instance. */
export async function withParser<T>(use: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  shared ??= create();
  shared.catch(() => (shared = undefined));
  const connection = await (await shared).connect();
  try {
    return await use(connection);
  } finally {
    connection.closeSync();
  }
}
