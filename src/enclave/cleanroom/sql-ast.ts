import type { DuckDBConnection } from "@duckdb/node-api";
import { withParser } from "./parser.ts";
import { CleanRoomPolicyError } from "./errors.ts";

/**
 * DuckDB's own parser as the clean room's SQL front end: `json_serialize_sql`
 * returns the parse tree DuckDB will execute, so the policy checks the same
 * tree the engine runs (no second SQL grammar to drift from it), and
 * `json_deserialize_sql` turns a checked, augmented tree back into SQL text.
 * The trees are plain JSON; this module types only what the checks read.
 */

export type AstNode = Record<string, unknown>;

export async function parseSelect(connection: DuckDBConnection, sql: string): Promise<AstNode> {
  const reader = await connection.runAndReadAll("SELECT json_serialize_sql($q::VARCHAR)", { q: sql });
  const parsed = JSON.parse(String(reader.getRows()[0]?.[0])) as { error: boolean; error_type?: string; error_message?: string; statements?: { node: AstNode }[] };
  if (parsed.error && parsed.error_type !== "parser") {
    // DuckDB parsed it, but it is not a SELECT (DELETE, COPY, ATTACH, PRAGMA ...).
    throw new CleanRoomPolicyError("UNSUPPORTED_QUERY", `the approved query must be one SELECT statement: ${parsed.error_message ?? "not a SELECT"}`, { details: { rule: "one SELECT statement" } });
  }
  if (parsed.error) {
    throw new CleanRoomPolicyError("QUERY_PARSE_FAILED", `the approved query does not parse: ${parsed.error_message ?? "unknown parser error"}`, { details: { rule: "query must parse" } });
  }
  if (parsed.statements?.length !== 1) {
    throw new CleanRoomPolicyError("UNSUPPORTED_QUERY", "the approved query must be exactly one SELECT statement", { details: { rule: "one SELECT statement" } });
  }
  return parsed.statements[0]!.node;
}

/** SQL text for a (checked) SELECT tree. */
export async function toSql(connection: DuckDBConnection, node: AstNode): Promise<string> {
  const json = JSON.stringify({ error: false, statements: [{ node, named_param_map: [] }] });
  const reader = await connection.runAndReadAll("SELECT json_deserialize_sql($j::JSON)", { j: json });
  return String(reader.getRows()[0]?.[0]);
}

/** One expression, parsed from SQL text built by the policy (never from user input). */
export async function parseExpression(connection: DuckDBConnection, expression: string): Promise<AstNode> {
  const node = await parseSelect(connection, `SELECT ${expression}`);
  return (node.select_list as AstNode[])[0]!;
}

let builtins: Promise<ReadonlyMap<string, ReadonlySet<string>>> | undefined;

/**
 * How DuckDB classifies each built-in function name: scalar, aggregate, table, ... Read once per process
 * (listing the functions takes DuckDB tens of ms) from the parser instance, which loads no extension: every
 * instance of this library has these built-ins, and a name missing here (a macro, an extension's function)
 * is refused by the checks, never taken for a built-in.
 */
export function builtinFunctionKinds(): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
  builtins ??= readBuiltins();
  builtins.catch(() => (builtins = undefined));
  return builtins;
}

function readBuiltins(): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
  return withParser(async (connection) => {
    const reader = await connection.runAndReadAll("SELECT DISTINCT function_name, function_type FROM duckdb_functions()");
    const kinds = new Map<string, Set<string>>();
    for (const [name, type] of reader.getRows()) {
      const key = String(name).toLowerCase();
      const set = kinds.get(key) ?? new Set<string>();
      set.add(String(type));
      kinds.set(key, set);
    }
    return kinds;
  });
}

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A tree with the parser's positions and output aliases removed, for structural comparison. */
export function shape(node: unknown): string {
  return JSON.stringify(node, (key, value: unknown) => (key === "query_location" || key === "alias" ? undefined : value));
}
