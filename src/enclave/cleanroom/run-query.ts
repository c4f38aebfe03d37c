import type { DuckDBConnection } from "@duckdb/node-api";
import { augmentedSql, IDENTITY_COLUMN } from "./augment.ts";
import { sampleDiscreteLaplace } from "./discrete-laplace.ts";
import type { RandomSource } from "./discrete-laplace.ts";
import { chargeEpsilon, noiseScale } from "./dp-budget.ts";
import { CleanRoomPolicyError } from "./errors.ts";
import type { OutputPolicy } from "./policy.ts";
import { checkQuery } from "./query-check.ts";

/**
 * Runs an approved query under its output policy on a DuckDB connection whose
 * tables are already loaded: check the query (refuse before reading a row),
 * charge the DP budget (refuse before reading a row), run the augmented query,
 * noise COUNT and SUM columns under DP, and drop every group with fewer than
 * minGroupSize distinct identities (noised under DP). Only the returned rows
 * may leave the enclave; suppressed rows are counted, never returned.
 */

export interface PolicyRunOptions {
  /** Epsilon already spent by earlier runs of this collaboration (from the chain). */
  readonly epsilonSpentBefore?: number;
  /** For tests of the noise; defaults to the OS CSPRNG. */
  readonly random?: RandomSource;
  /** The checked and augmented query, prepared while the tables were still loading (`preparePolicyRun`); made here when absent. */
  readonly prepared?: PreparedPolicyRun;
}

/** An approved query checked against the policy and augmented (augment.ts): what depends on the tables' columns, not their rows. */
export interface PreparedPolicyRun {
  readonly checked: Awaited<ReturnType<typeof checkQuery>>;
  readonly runSql: string;
}

/**
 * Checks and augments the query on a connection whose tables exist (their rows may still be loading): it reads
 * only the parse tree and the tables' column names, so it can run while the rows arrive.
 */
export async function preparePolicyRun(connection: DuckDBConnection, sql: string, policy: OutputPolicy): Promise<PreparedPolicyRun> {
  const checked = await checkQuery(connection, sql, policy);
  return { checked, runSql: await augmentedSql(connection, checked, policy) };
}

export interface PolicyRunResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
  readonly suppressed: number;
  /** Epsilon this run spent (0 without DP). */
  readonly epsilonSpent: number;
  /** Epsilon spent by all runs including this one (0 without DP). */
  readonly epsilonTotal: number;
  /** Output columns that carry noise. */
  readonly noised: readonly string[];
}

function integer(value: unknown): bigint {
  if (value === null) return 0n;
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  throw new TypeError("a noised aggregate must be an integer");
}

export async function runUnderPolicy(connection: DuckDBConnection, sql: string, policy: OutputPolicy, options: PolicyRunOptions = {}): Promise<PolicyRunResult> {
  const { checked, runSql } = options.prepared ?? (await preparePolicyRun(connection, sql, policy));
  const noisedIndexes = policy.dp ? checked.columns.flatMap((c, i) => (c.kind === "aggregate" ? [i] : [])) : [];
  const charge = policy.dp ? chargeEpsilon(policy.dp, options.epsilonSpentBefore ?? 0, noisedIndexes.length + 1) : undefined;

  const reader = await connection.runAndReadAll(runSql).catch(() => {
    // DuckDB's error messages quote row values ("Could not convert string 'x'"): neither the message nor the cause may leave.
    throw new CleanRoomPolicyError("QUERY_FAILED", "the approved query failed while running; its error is not disclosed because it may quote row values", { details: { rule: "query errors are not disclosed" } });
  });
  const names = reader.columnNames();
  const identityIndex = names.length - 1;
  if (names[identityIndex] !== IDENTITY_COLUMN) throw new TypeError("the augmented query lost its identity column");
  const threshold = BigInt(policy.minGroupSize);
  const rows: unknown[][] = [];
  let suppressed = 0;
  for (const raw of reader.getRowsJS()) {
    const row = raw.slice(0, identityIndex) as unknown[];
    let identities = integer(raw[identityIndex]);
    if (charge && policy.dp) {
      const share = charge.perQuantity;
      identities += sampleDiscreteLaplace(noiseScale(1n, share), options.random);
      for (const index of noisedIndexes) {
        const column = checked.columns[index]!;
        const sensitivity = column.kind === "aggregate" && column.aggregate === "sum" ? maxAbs(policy.dp.bounds[column.column!]!) : 1n;
        const noisy = integer(row[index]) + sampleDiscreteLaplace(noiseScale(sensitivity, share), options.random);
        // A count below zero says nothing new; clamping it is post-processing.
        row[index] = column.kind === "aggregate" && column.aggregate !== "sum" && noisy < 0n ? 0n : noisy;
      }
    }
    if (identities < threshold) {
      suppressed += 1;
      continue;
    }
    rows.push(row);
  }
  return {
    columns: names.slice(0, identityIndex),
    rows,
    suppressed,
    epsilonSpent: charge?.spent ?? 0,
    epsilonTotal: charge?.totalAfter ?? 0,
    noised: noisedIndexes.map((i) => checked.columns[i]!.name),
  };
}

function maxAbs([lo, hi]: readonly [number, number]): bigint {
  const m = Math.max(Math.abs(lo), Math.abs(hi));
  return BigInt(m === 0 ? 1 : m);
}
