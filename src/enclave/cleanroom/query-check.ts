import type { DuckDBConnection } from "@duckdb/node-api";
import { CleanRoomPolicyError } from "./errors.ts";
import type { CleanRoomPolicyErrorCode } from "./errors.ts";
import { allowedAggregates } from "./policy.ts";
import type { OutputPolicy } from "./policy.ts";
import { builtinFunctionKinds, parseSelect, shape } from "./sql-ast.ts";
import type { AstNode } from "./sql-ast.ts";

/**
 * The output policy's query check, run on DuckDB's parse tree of the approved
 * SQL before any data is read. It accepts only what it can prove aggregate:
 * one SELECT over base tables and joins, every output column either a GROUP BY
 * key or an allowed aggregate over a plain column (or COUNT(*)). Anything it
 * cannot prove safe (subqueries, CTEs, set operations, table functions, window
 * functions, macros, GROUP BY ALL, ROLLUP/CUBE, DISTINCT, expressions around
 * aggregates, conditional aggregates) is refused, naming the rule and column.
 */

export interface AggregateColumn {
  readonly kind: "aggregate";
  readonly name: string;
  /** Lower-case aggregate name as DuckDB parses it (count_star for COUNT(*)). */
  readonly aggregate: string;
  readonly distinct: boolean;
  /** The aggregated column's last name part (undefined for COUNT(*)). */
  readonly column: string | undefined;
}

export interface KeyColumn {
  readonly kind: "key";
  readonly name: string;
}

export type OutputColumn = AggregateColumn | KeyColumn;

export interface BaseTable {
  readonly table: string;
  /** The name the query refers to it by (its alias, or the table name). */
  readonly reference: string;
}

export interface CheckedQuery {
  readonly tree: AstNode;
  readonly columns: readonly OutputColumn[];
  readonly tables: readonly BaseTable[];
}

/** Reserved for the columns the policy adds to the query. */
export const RESERVED_PREFIX = "__cloister";

const SCALAR_CLASSES = new Set(["COLUMN_REF", "CONSTANT", "FUNCTION", "OPERATOR", "COMPARISON", "CONJUNCTION", "CAST", "CASE", "BETWEEN", "COLLATE"]);
/** Scalar functions that raise data-dependent errors or read the session rather than the data. */
const DENIED_FUNCTIONS = new Set(["error", "current_setting", "current_query", "getvariable"]);
const JOIN_KINDS = new Set(["REGULAR", "NATURAL", "CROSS"]);

function refuse(code: CleanRoomPolicyErrorCode, rule: string, message: string, column?: string): never {
  throw new CleanRoomPolicyError(code, message, { details: column === undefined ? { rule } : { rule, column } });
}

function isObject(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function columnName(item: AstNode, index: number): string {
  if (typeof item.alias === "string" && item.alias !== "") return item.alias;
  if (item.class === "COLUMN_REF") return (item.column_names as string[]).join(".");
  if (item.class === "FUNCTION" || item.class === "WINDOW") return `${String(item.function_name)}(...)`;
  if (item.class === "STAR") return "*";
  return `column ${index + 1}`;
}

class Checker {
  readonly policy: OutputPolicy;
  readonly kinds: ReadonlyMap<string, ReadonlySet<string>>;
  readonly allowed: ReadonlySet<string>;

  constructor(policy: OutputPolicy, kinds: ReadonlyMap<string, ReadonlySet<string>>) {
    this.policy = policy;
    this.kinds = kinds;
    this.allowed = allowedAggregates(policy);
  }

  isAggregate(node: AstNode): boolean {
    return node.class === "FUNCTION" && (this.kinds.get(String(node.function_name).toLowerCase())?.has("aggregate") ?? false);
  }

  /** Walks an expression; aggregates are accepted only where `aggregates` is true (HAVING, ORDER BY). */
  expression(node: unknown, where: string, aggregates: boolean, column?: string): void {
    if (Array.isArray(node)) {
      for (const child of node) this.expression(child, where, aggregates, column);
      return;
    }
    if (!isObject(node)) return;
    if (typeof node.class === "string") {
      if (node.class === "WINDOW") refuse("WINDOW_FUNCTION", "no window functions", `window function ${String(node.function_name)}() in ${where} is refused: it can output row-level values`, column);
      if (node.class === "SUBQUERY") refuse("UNSUPPORTED_QUERY", "no subqueries", `a subquery in ${where} is refused: the policy cannot prove it aggregate`, column);
      if (!SCALAR_CLASSES.has(node.class)) refuse("UNSUPPORTED_QUERY", "supported expressions only", `a ${node.class} expression in ${where} is refused: the policy cannot prove it safe`, column);
      if (node.class === "FUNCTION") {
        if (this.isAggregate(node)) {
          if (!aggregates) refuse("UNSUPPORTED_QUERY", "aggregates only in the select list, HAVING or ORDER BY", `aggregate ${String(node.function_name)}() in ${where} is refused`, column);
          this.aggregate(node, column ?? where);
          return;
        }
        this.scalarFunction(node, where, column);
      }
    }
    for (const value of Object.values(node)) this.expression(value, where, aggregates, column);
  }

  scalarFunction(node: AstNode, where: string, column?: string): void {
    const name = String(node.function_name).toLowerCase();
    if (node.schema !== "" || node.catalog !== "") refuse("UNSUPPORTED_QUERY", "built-in functions only", `function ${name} in ${where} is refused: only unqualified built-in scalar functions may be used`, column);
    if (DENIED_FUNCTIONS.has(name)) refuse("UNSUPPORTED_QUERY", "no session or error functions", `function ${name} in ${where} is refused`, column);
    if (!(this.kinds.get(name)?.has("scalar") ?? false)) refuse("UNSUPPORTED_QUERY", "built-in scalar functions only", `function ${name} in ${where} is refused: it is not a built-in scalar function (macros and table functions cannot be proved safe)`, column);
  }

  /** An allowed aggregate over one plain column (or COUNT(*)), with no FILTER or ORDER BY. */
  aggregate(node: AstNode, column: string): AggregateColumn {
    const name = String(node.function_name).toLowerCase();
    if (!this.allowed.has(name)) {
      refuse("AGGREGATE_NOT_ALLOWED", "only COUNT, COUNT(DISTINCT), SUM and AVG unless the policy lists more", `aggregate ${name.toUpperCase()} in output column ${column} is not allowed by the policy`, column);
    }
    const children = node.children as AstNode[];
    const orders = (node.order_bys as { orders?: unknown[] } | null)?.orders ?? [];
    if (node.schema !== "" || node.filter !== null || orders.length > 0 || node.export_state !== false) {
      refuse("UNSUPPORTED_QUERY", "plain aggregates only", `aggregate ${name} in output column ${column} uses FILTER, ORDER BY or a schema: write the condition in WHERE or GROUP BY`, column);
    }
    if (name === "count_star") return { kind: "aggregate", name: column, aggregate: name, distinct: false, column: undefined };
    if (children.length !== 1 || children[0]!.class !== "COLUMN_REF") {
      refuse("UNSUPPORTED_QUERY", "aggregates over a plain column", `aggregate ${name} in output column ${column} must take one plain column: an expression inside an aggregate can single out rows`, column);
    }
    const names = children[0]!.column_names as string[];
    return { kind: "aggregate", name: column, aggregate: name, distinct: node.distinct === true, column: names[names.length - 1]! };
  }

  tables(ref: unknown, out: BaseTable[]): void {
    if (!isObject(ref)) refuse("UNSUPPORTED_QUERY", "FROM base tables and joins", "the query must read FROM tables");
    if (ref.sample !== null) refuse("UNSUPPORTED_QUERY", "no sampling", "TABLESAMPLE is refused");
    if (ref.type === "BASE_TABLE") {
      if (ref.schema_name !== "" || ref.catalog_name !== "" || ref.at_clause !== null || (ref.column_name_alias as unknown[]).length > 0) {
        refuse("UNSUPPORTED_QUERY", "FROM base tables and joins", `table ${String(ref.table_name)} must be named plainly (no schema, AT clause or column aliases)`);
      }
      out.push({ table: String(ref.table_name), reference: String(ref.alias || ref.table_name) });
      return;
    }
    if (ref.type === "JOIN") {
      if (!JOIN_KINDS.has(String(ref.ref_type))) refuse("UNSUPPORTED_QUERY", "plain joins only", `a ${String(ref.ref_type)} join is refused`);
      this.tables(ref.left, out);
      this.tables(ref.right, out);
      this.expression(ref.condition, "a join condition", false);
      return;
    }
    refuse("UNSUPPORTED_QUERY", "FROM base tables and joins", `a ${String(ref.type)} in FROM is refused: only tables and joins of tables can be proved safe (no subqueries or table functions)`);
  }

  modifiers(mods: AstNode[]): void {
    for (const mod of mods) {
      if (this.policy.dp) refuse("DP_UNSUPPORTED", "no ORDER BY, LIMIT or DISTINCT under differential privacy", "ORDER BY, LIMIT and DISTINCT are refused under differential privacy: they act on the exact values before noise");
      if (mod.type === "ORDER_MODIFIER") {
        this.expression(mod.orders, "ORDER BY", true);
      } else if (mod.type === "LIMIT_MODIFIER" && isObject(mod.limit) && mod.limit.class === "CONSTANT" && mod.offset === null) {
        continue;
      } else {
        refuse("UNSUPPORTED_QUERY", "ORDER BY and a constant LIMIT only", `the ${String(mod.type).replace("_MODIFIER", "")} modifier is refused`);
      }
    }
  }

  /** Group keys with positional references (GROUP BY 1) replaced by the select item they name. */
  groupKeys(node: AstNode): AstNode[] {
    const selectList = node.select_list as AstNode[];
    const keys = (node.group_expressions as AstNode[]).map((key) => {
      const value = key.value as { type?: { id?: string }; value?: unknown } | undefined;
      if (key.class !== "CONSTANT") return key;
      const position = value?.type?.id === "INTEGER" ? Number(value.value) : NaN;
      const target = selectList[position - 1];
      if (!target) refuse("UNSUPPORTED_QUERY", "GROUP BY expressions", "a GROUP BY constant must name a select item by position");
      return target;
    });
    const sets = node.group_sets as number[][];
    const simple = keys.length === 0 ? sets.length === 0 : sets.length === 1 && sets[0]!.length === keys.length && sets[0]!.every((v, i) => v === i);
    if (!simple) refuse("UNSUPPORTED_QUERY", "one plain GROUP BY", "GROUPING SETS, ROLLUP and CUBE are refused: their subtotals allow differencing between groups");
    for (const key of keys) this.expression(key, "GROUP BY", false);
    return keys;
  }

  outputColumns(node: AstNode, keys: AstNode[]): OutputColumn[] {
    const keyShapes = new Set(keys.map(shape));
    return (node.select_list as AstNode[]).map((item, index) => {
      const name = columnName(item, index);
      if (name.toLowerCase().startsWith(RESERVED_PREFIX)) refuse("UNSUPPORTED_QUERY", "reserved column names", `output column ${name} uses the reserved prefix ${RESERVED_PREFIX}`, name);
      if (item.class === "STAR" || item.class === "COLUMNS") refuse("ROW_LEVEL_OUTPUT", "every output column is a GROUP BY key or an allowed aggregate", "SELECT * outputs row-level values and is refused: name GROUP BY keys and aggregates", name);
      if (item.class === "WINDOW") refuse("WINDOW_FUNCTION", "no window functions", `output column ${name} is a window function, which outputs row-level values`, name);
      if (keyShapes.has(shape(item))) {
        this.expression(item, `output column ${name}`, false, name);
        return { kind: "key", name };
      }
      if (this.isAggregate(item)) return this.aggregate(item, name);
      // Not a key and not a bare aggregate: find why, most specific rule first.
      this.expression(item, `output column ${name}`, true, name);
      if (containsAggregate(this, item)) {
        refuse("UNSUPPORTED_QUERY", "every output column is a GROUP BY key or a bare aggregate", `output column ${name} computes on aggregates: output the aggregates themselves`, name);
      }
      return refuse("ROW_LEVEL_OUTPUT", "every output column is a GROUP BY key or an allowed aggregate", `output column ${name} is neither a GROUP BY key nor an allowed aggregate, so it could output row-level values`, name);
    });
  }

  dp(columns: readonly OutputColumn[], having: unknown): void {
    const dp = this.policy.dp;
    if (!dp) return;
    if (having !== null) refuse("DP_UNSUPPORTED", "no HAVING under differential privacy", "HAVING is refused under differential privacy: it filters on exact values before noise");
    for (const c of columns) {
      if (c.kind !== "aggregate") continue;
      if (c.aggregate === "sum") {
        if (!c.column || !Object.hasOwn(dp.bounds, c.column)) refuse("DP_UNSUPPORTED", "SUM needs declared bounds", `output column ${c.name} sums ${String(c.column)}, which has no bounds in the policy's dp.bounds`, c.name);
      } else if (c.aggregate !== "count" && c.aggregate !== "count_star") {
        refuse("DP_UNSUPPORTED", "only COUNT and SUM under differential privacy", `output column ${c.name} uses ${c.aggregate.toUpperCase()}, which this policy cannot noise: output SUM and COUNT and divide them`, c.name);
      }
    }
  }
}

function containsAggregate(checker: Checker, node: unknown): boolean {
  if (Array.isArray(node)) return node.some((child) => containsAggregate(checker, child));
  if (!isObject(node)) return false;
  if (checker.isAggregate(node)) return true;
  return Object.values(node).some((value) => containsAggregate(checker, value));
}

/** Parses and checks the approved SQL; throws CleanRoomPolicyError naming the rule and the column. */
export async function checkQuery(connection: DuckDBConnection, sql: string, policy: OutputPolicy): Promise<CheckedQuery> {
  const tree = await parseSelect(connection, sql);
  if (tree.type !== "SELECT_NODE") refuse("UNSUPPORTED_QUERY", "one SELECT statement", `a ${String(tree.type)} is refused: the approved query must be one SELECT (no UNION, INTERSECT, EXCEPT or other statements)`);
  if (((tree.cte_map as { map?: unknown[] }).map ?? []).length > 0) refuse("UNSUPPORTED_QUERY", "no CTEs", "WITH (common table expressions) is refused: the policy cannot prove a CTE aggregate");
  if (tree.qualify !== null || tree.sample !== null) refuse("UNSUPPORTED_QUERY", "no QUALIFY or sampling", "QUALIFY and USING SAMPLE are refused");
  if (tree.aggregate_handling !== "STANDARD_HANDLING") refuse("UNSUPPORTED_QUERY", "explicit GROUP BY", "GROUP BY ALL is refused: list the GROUP BY keys");
  const checker = new Checker(policy, await builtinFunctionKinds());
  const tables: BaseTable[] = [];
  checker.tables(tree.from_table, tables);
  checker.expression(tree.where_clause, "WHERE", false);
  const keys = checker.groupKeys(tree);
  checker.expression(tree.having, "HAVING", true);
  const columns = checker.outputColumns(tree, keys);
  checker.modifiers(tree.modifiers as AstNode[]);
  checker.dp(columns, tree.having);
  return { tree, columns, tables };
}
