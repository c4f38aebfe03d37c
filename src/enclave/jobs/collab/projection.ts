/**
 * Which columns of a partner's file cross (transfer.ts): only those the approved query and the policy can
 * read. The set is taken by name from DuckDB's parse tree of the approved SQL, conservatively: every name in
 * every column reference (qualifiers and struct fields included) and every USING column, plus the policy's
 * identity and DP-bounded columns. A query that reads columns without naming them (*, COLUMNS(...), a
 * positional reference, NATURAL JOIN, a whole-row reference to a table, a table function or any table
 * reference other than tables, joins, subqueries and VALUES) gets no set: every column is sent.
 *
 * Dropping a column no reference names cannot change how the query binds: every name it uses is still
 * there, in the same tables, so a name that was ambiguous stays ambiguous.
 */
import type { OutputPolicy } from "../../cleanroom/policy.ts";
import { parseSelect, type AstNode } from "../../cleanroom/sql-ast.ts";
import { withParser } from "../../cleanroom/parser.ts";

/** Expression classes that read columns they do not name. */
const IMPLICIT_CLASSES = new Set(["STAR", "COLUMNS", "POSITIONAL_REFERENCE"]);

/** Table references whose columns are only the ones named in them (or in their own SELECT). */
const PLAIN_TABLE_REFS = new Set(["BASE_TABLE", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY_FROM"]);


/** Lower-case names the query and the policy can read, or undefined when every column must be sent. */
export function namedColumnsOf(tree: AstNode, policy: OutputPolicy): ReadonlySet<string> | undefined {
  const names = new Set<string>();
  const tables = new Set<string>();
  const refs: string[][] = [];
  let implicit = false;
  // `tableRef`: the value is a table reference (a FROM clause, or a join's side).
  const visit = (value: unknown, tableRef: boolean) => {
    if (implicit || typeof value !== "object" || value === null) return;
    if (Array.isArray(value)) {
      for (const v of value) visit(v, tableRef);
      return;
    }
    const node = value as AstNode;
    if (tableRef && !PLAIN_TABLE_REFS.has(String(node.type))) implicit = true;
    if (typeof node.class === "string" && IMPLICIT_CLASSES.has(node.class)) implicit = true;
    if (node.type === "JOIN" && node.ref_type === "NATURAL") implicit = true;
    if (node.class === "COLUMN_REF" && Array.isArray(node.column_names)) refs.push((node.column_names as unknown[]).map((n) => String(n).toLowerCase()));
    if (node.type === "JOIN" && Array.isArray(node.using_columns)) for (const n of node.using_columns as unknown[]) names.add(String(n).toLowerCase());
    if (tableRef) {
      if (typeof node.table_name === "string") tables.add(node.table_name.toLowerCase());
      if (typeof node.alias === "string" && node.alias !== "") tables.add(node.alias.toLowerCase());
    }
    for (const [k, v] of Object.entries(node)) visit(v, k === "from_table" || (node.type === "JOIN" && (k === "left" || k === "right")));
  };
  visit(tree, false);
  if (implicit) return undefined;
  for (const ref of refs) {
    // `t1` or `main.cards` alone is the whole row of a table, every column in it.
    if (tables.has(ref.at(-1)!)) return undefined;
    for (const n of ref) names.add(n);
  }
  for (const n of policy.identity.split(".")) names.add(n.toLowerCase());
  for (const n of Object.keys(policy.dp?.bounds ?? {})) names.add(n.toLowerCase());
  return names;
}

/** `namedColumnsOf` for the approved SQL, parsed by the enclave's DuckDB parser. */
export function namedColumns(sql: string, policy: OutputPolicy): Promise<ReadonlySet<string> | undefined> {
  return withParser(async (connection) => namedColumnsOf(await parseSelect(connection, sql), policy));
}
