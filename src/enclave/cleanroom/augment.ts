import type { DuckDBConnection } from "@duckdb/node-api";
import { CleanRoomPolicyError } from "./errors.ts";
import type { OutputPolicy } from "./policy.ts";
import { RESERVED_PREFIX } from "./query-check.ts";
import type { CheckedQuery } from "./query-check.ts";
import { parseExpression, quoteIdent, toSql } from "./sql-ast.ts";
import type { AstNode } from "./sql-ast.ts";

/**
 * The SQL the enclave actually runs for a checked query: the approved tree
 * with one column appended, the number of distinct identities in each output
 * group (the aggregation threshold reads it; it is never delivered), and,
 * under differential privacy, each SUM's argument clamped to its declared
 * integer bounds. The tree is edited, then turned back into SQL by DuckDB.
 *
 * The identity column is the policy's `identity`. Qualified ("p.customer_id")
 * it is used as written (the parties chose to count that table's identities
 * only). Unqualified, every table of the FROM clause must have it, and the
 * group size is the LEAST of their distinct counts (conservative: a join can
 * never make it larger).
 */

export const IDENTITY_COLUMN = `${RESERVED_PREFIX}_identities`;

/** Lower-case column names of each table, as loaded into DuckDB. */
export async function tableColumns(connection: DuckDBConnection): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
  const reader = await connection.runAndReadAll("SELECT table_name, column_name FROM information_schema.columns");
  const columns = new Map<string, Set<string>>();
  for (const [table, column] of reader.getRows()) {
    const key = String(table).toLowerCase();
    const set = columns.get(key) ?? new Set<string>();
    set.add(String(column).toLowerCase());
    columns.set(key, set);
  }
  return columns;
}

function identityRefs(checked: CheckedQuery, policy: OutputPolicy, columns: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const parts = policy.identity.split(".");
  if (parts.length === 2) {
    const [qualifier, column] = parts as [string, string];
    const table = checked.tables.find((t) => t.reference.toLowerCase() === qualifier.toLowerCase());
    if (table && columns.get(table.table.toLowerCase())?.has(column.toLowerCase())) return [`${quoteIdent(table.reference)}.${quoteIdent(column)}`];
  } else {
    // Every table must carry the identity: a table without it could contribute one person's values to a large group unnoticed.
    const missing = checked.tables.find((t) => !columns.get(t.table.toLowerCase())?.has(policy.identity.toLowerCase()));
    if (!missing) return checked.tables.map((t) => `${quoteIdent(t.reference)}.${quoteIdent(policy.identity)}`);
    throw new CleanRoomPolicyError("IDENTITY_NOT_FOUND", `table ${missing.table} in the query has no identity column ${policy.identity}: every joined table must carry it, or the policy must name one table's (alias.${policy.identity})`, {
      details: { rule: "aggregation threshold", column: policy.identity, table: missing.table },
    });
  }
  throw new CleanRoomPolicyError("IDENTITY_NOT_FOUND", `no table in the query's FROM clause has the policy's identity column ${policy.identity}: the aggregation threshold cannot be enforced`, {
    details: { rule: "aggregation threshold", column: policy.identity },
  });
}

export async function augmentedSql(connection: DuckDBConnection, checked: CheckedQuery, policy: OutputPolicy): Promise<string> {
  const tree = structuredClone(checked.tree);
  const selectList = tree.select_list as AstNode[];
  const refs = identityRefs(checked, policy, await tableColumns(connection));
  const counts = refs.map((ref) => `count(DISTINCT ${ref})`);
  const identities = await parseExpression(connection, counts.length === 1 ? counts[0]! : `least(${counts.join(", ")})`);
  const dp = policy.dp;
  if (dp) {
    for (const [index, column] of checked.columns.entries()) {
      if (column.kind !== "aggregate" || column.aggregate !== "sum") continue;
      const [lo, hi] = dp.bounds[column.column!]!;
      const call = selectList[index]!;
      const arg = (call.children as AstNode[])[0]!;
      const ref = (arg.column_names as string[]).map(quoteIdent).join(".");
      // Round to an integer inside the bounds: the discrete mechanism noises integers.
      const clamped = await parseExpression(connection, `CAST(round(greatest(least(${ref}, ${hi}), ${lo})) AS BIGINT)`);
      call.children = [clamped];
    }
  }
  selectList.push({ ...identities, alias: IDENTITY_COLUMN });
  return toSql(connection, tree);
}
