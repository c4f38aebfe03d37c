/**
 * Which rows of a partner's file cross (transfer.ts): only those the approved query's own WHERE clause can
 * keep. The conditions are taken from DuckDB's parse tree of the approved SQL, conservatively, and applied
 * by the partner's enclave before anything is sent, so the compute enclave never receives a row the query
 * would drop (data minimisation, and less to carry). The compute enclave still runs the whole approved SQL,
 * these conditions included, so the result is the same row for row.
 *
 * A conjunct of the WHERE clause is pushed to table T only when:
 * - the query is one SELECT (no CTE, no set operation, no SAMPLE) whose FROM clause is base tables joined
 *   by INNER or comma joins (no outer, semi, anti, ASOF, positional, lateral or NATURAL join, no subquery,
 *   no table function), T appearing exactly once, unsampled; for inner joins σ_c(T ⋈ U) = σ_c(T) ⋈ U when c
 *   reads only T's columns, NULLs included (a condition that is NULL drops the row either way);
 * - every column it reads is qualified with T's name or alias (or the query has T as its only table);
 * - it is built only of column references, constants, comparisons, AND/OR/NOT, IS [NOT] NULL, [NOT] IN a
 *   list, BETWEEN, LIKE/ILIKE and a few deterministic string functions: no cast, no subquery, no aggregate,
 *   no random or volatile function, so it means the same on the partner's DuckDB as on the compute enclave's.
 *
 * The filter is rendered back to SQL by DuckDB. It reads nothing the projection (projection.ts) does not
 * already send, and it is named in both enclaves' provenance (`filter`), so an auditor sees which rows crossed.
 */
import type { OutputPolicy } from "../../cleanroom/policy.ts";
import { withParser } from "../../cleanroom/parser.ts";
import { parseSelect, toSql, type AstNode } from "../../cleanroom/sql-ast.ts";

const PUSHABLE_OPERATORS = new Set(["OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "COMPARE_IN", "COMPARE_NOT_IN"]);

/** Built-in functions (by DuckDB's name for them) a pushed condition may call: deterministic, no cast, no state. */
const PUSHABLE_FUNCTIONS = new Set(["~~", "!~~", "~~*", "!~~*", "lower", "upper", "starts_with", "prefix", "suffix", "contains", "length"]);

/** The base tables of a FROM clause made only of INNER and comma joins, or undefined when it has anything else. */
function innerJoinedTables(from: unknown): AstNode[] | undefined {
  if (typeof from !== "object" || from === null) return undefined;
  const node = from as AstNode;
  if (node.sample !== null && node.sample !== undefined) return undefined;
  if (node.type === "BASE_TABLE") {
    if (node.at_clause !== null && node.at_clause !== undefined) return undefined;
    if (Array.isArray(node.column_name_alias) && node.column_name_alias.length > 0) return undefined;
    return [node];
  }
  if (node.type !== "JOIN" || node.join_type !== "INNER" || (node.ref_type !== "REGULAR" && node.ref_type !== "CROSS")) return undefined;
  if (Array.isArray(node.using_columns) && node.using_columns.length > 0) return undefined;
  const left = innerJoinedTables(node.left);
  const right = innerJoinedTables(node.right);
  return left && right ? [...left, ...right] : undefined;
}

/** Whether `expression` reads only `reference`'s columns through the allowed kinds of node. */
function readsOnly(expression: unknown, reference: string, unqualifiedOk: boolean): boolean {
  if (typeof expression !== "object" || expression === null) return false;
  const node = expression as AstNode;
  const all = (xs: unknown) => Array.isArray(xs) && xs.every((x) => readsOnly(x, reference, unqualifiedOk));
  switch (node.class) {
    case "CONSTANT":
      return true;
    case "COLUMN_REF": {
      const names = node.column_names as unknown[];
      if (!Array.isArray(names)) return false;
      if (names.length === 2) return String(names[0]).toLowerCase() === reference;
      return names.length === 1 && unqualifiedOk;
    }
    case "COMPARISON":
      return readsOnly(node.left, reference, unqualifiedOk) && readsOnly(node.right, reference, unqualifiedOk);
    case "CONJUNCTION":
      return all(node.children);
    case "OPERATOR":
      return PUSHABLE_OPERATORS.has(String(node.type)) && all(node.children);
    case "BETWEEN":
      return readsOnly(node.input, reference, unqualifiedOk) && readsOnly(node.lower, reference, unqualifiedOk) && readsOnly(node.upper, reference, unqualifiedOk);
    case "FUNCTION": {
      const plain = node.schema === "" && (node.catalog === "" || node.catalog === undefined) && node.filter === null && node.distinct === false && node.export_state === false;
      const orders = (node.order_bys as { orders?: unknown[] } | undefined)?.orders;
      return plain && (orders === undefined || orders.length === 0) && PUSHABLE_FUNCTIONS.has(String(node.function_name)) && all(node.children);
    }
    default:
      return false;
  }
}

/** The top-level conjuncts of a WHERE clause. */
function conjuncts(where: AstNode): AstNode[] {
  return where.class === "CONJUNCTION" && where.type === "CONJUNCTION_AND" ? (where.children as AstNode[]).flatMap(conjuncts) : [where];
}

/**
 * The SELECT that reads table `table`'s rows the approved query can keep (`SELECT * FROM table [AS alias]
 * WHERE …`, as a parse tree), or undefined when no condition can be pushed to it.
 */
export function rowFilterOf(tree: AstNode, table: string): AstNode | undefined {
  if (tree.type !== "SELECT_NODE" || !tree.where_clause) return undefined;
  if (((tree.cte_map as { map?: unknown[] } | undefined)?.map ?? []).length > 0) return undefined;
  if (tree.sample !== null && tree.sample !== undefined) return undefined;
  const tables = innerJoinedTables(tree.from_table);
  if (!tables) return undefined;
  const mine = tables.filter((t) => String(t.table_name).toLowerCase() === table.toLowerCase() && t.schema_name === "" && t.catalog_name === "");
  if (mine.length !== 1 || tables.filter((t) => String(t.table_name).toLowerCase() === table.toLowerCase()).length !== 1) return undefined;
  const base = mine[0]!;
  const reference = String(base.alias || base.table_name).toLowerCase();
  // Two tables under one name (an alias equal to another table's name) make a qualifier ambiguous.
  if (tables.filter((t) => String(t.alias || t.table_name).toLowerCase() === reference).length !== 1) return undefined;
  const pushed = conjuncts(tree.where_clause as AstNode).filter((c) => readsOnly(c, reference, tables.length === 1));
  if (pushed.length === 0) return undefined;
  const where = pushed.length === 1 ? pushed[0]! : { class: "CONJUNCTION", type: "CONJUNCTION_AND", alias: "", children: pushed };
  return {
    ...structuredClone(tree),
    select_list: [{ class: "STAR", type: "STAR", alias: "", relation_name: "", exclude_list: [], replace_list: [], rename_list: [], columns: false, expr: null, qualified_exclude_list: [] }],
    from_table: structuredClone(base),
    where_clause: structuredClone(where),
    group_expressions: [],
    group_sets: [],
    having: null,
    qualify: null,
    modifiers: [],
    aggregate_handling: "STANDARD_HANDLING",
  };
}

/**
 * `rowFilterOf` for every table of the approved SQL, as SQL text rendered by the enclave's DuckDB parser, keyed by
 * lower-case table name; none when the policy says `pushdown: false`.
 */
export async function rowFilters(sql: string, policy: Pick<OutputPolicy, "pushdown">): Promise<ReadonlyMap<string, string>> {
  if (policy.pushdown === false) return new Map();
  return withParser(async (connection) => {
    const tree = await parseSelect(connection, sql);
    const filters = new Map<string, string>();
    for (const base of (tree.type === "SELECT_NODE" ? innerJoinedTables(tree.from_table) : undefined) ?? []) {
      const table = String(base.table_name).toLowerCase();
      const filter = rowFilterOf(tree, table);
      if (filter) filters.set(table, await toSql(connection, filter));
    }
    return filters;
  });
}
