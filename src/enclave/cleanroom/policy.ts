import { z } from "zod";
import { CleanRoomPolicyError } from "./errors.ts";

/**
 * The output policy of one collaboration, as the parties approved it.
 * `allowedAggregates` widens the default set (count, sum, avg); `dp` turns on
 * differential privacy with integer clamping bounds per summed column;
 * `pushdown: false` has partners send every row of their files instead of only
 * those the approved query's own conditions keep (docs/cleanroom.md: the
 * hosts then see only the files' sizes, not how many rows match).
 */

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a plain SQL identifier");

const bounds = z
  .tuple([z.number().int().safe(), z.number().int().safe()])
  .refine(([lo, hi]) => lo <= hi, "lower bound must not exceed the upper bound");

export const dpPolicySchema = z.strictObject({
  epsilon: z.number().positive().finite(),
  budget: z.number().positive().finite(),
  bounds: z.record(identifier, bounds).default({}),
});

export const outputPolicySchema = z.strictObject({
  identity: z.string().regex(/^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/, "a column name, optionally qualified by a table alias"),
  minGroupSize: z.number().int().min(1).max(1_000_000),
  allowedAggregates: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)).optional(),
  dp: dpPolicySchema.optional(),
  pushdown: z.boolean().optional(),
});

export type DpPolicy = z.infer<typeof dpPolicySchema>;
export type OutputPolicy = z.infer<typeof outputPolicySchema>;

/** The aggregates every policy allows; `count_star` is how DuckDB parses COUNT(*). */
export const DEFAULT_AGGREGATES: readonly string[] = ["count", "count_star", "sum", "avg"];

export function parseOutputPolicy(input: unknown): OutputPolicy {
  const parsed = outputPolicySchema.safeParse(input);
  if (!parsed.success) {
    throw new CleanRoomPolicyError("POLICY_INVALID", `the output policy is malformed: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`, {
      details: { rule: "policy schema" },
    });
  }
  if (parsed.data.dp && parsed.data.dp.epsilon > parsed.data.dp.budget) {
    throw new CleanRoomPolicyError("POLICY_INVALID", "the output policy's dp.epsilon per run exceeds its dp.budget: no run could ever be made", { details: { rule: "dp budget" } });
  }
  return parsed.data;
}

export function allowedAggregates(policy: OutputPolicy): ReadonlySet<string> {
  return new Set([...DEFAULT_AGGREGATES, ...(policy.allowedAggregates ?? [])]);
}
