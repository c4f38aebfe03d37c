/**
 * The kinds of confidential work an enclave runs, as every party names them
 * (gate requests, provenance predicates, anchors), and each kind's part of
 * the provenance predicate. A new job kind adds its name here, its predicate
 * schema below, and its module under src/enclave/jobs/.
 */
import { z } from "zod";
import { addressSchema as address, lowerHex32Schema as hex32 } from "./schemas.ts";

export const JOB_KINDS = [
  "task",
  "operate",
] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export const jobKindSchema = z.enum(JOB_KINDS);

const decimal = z.string().regex(/^[0-9]+$/);

/** What a task's provenance says of it beyond the common part: where it was posted, its program, envelope and limits. */
export const taskPredicateSchema = z
  .object({
    chainId: decimal,
    market: address,
    program: z.object({ digest: hex32 }).strict(),
    envelope: z.object({ digest: hex32 }).strict(),
    limits: z.object({ memoryMb: z.number(), cpuTimeMs: z.number().optional(), timeoutMs: z.number(), maxOutputBytes: z.number() }).strict(),
  })
  .strict();
export type TaskPredicate = z.infer<typeof taskPredicateSchema>;

/** What a granted manipulation's provenance says: the grant, the use, the dataset, the statement and what it changed. */
export const operatePredicateSchema = z
  .object({
    chainId: decimal,
    grants: address,
    grantId: decimal,
    runId: hex32,
    /** 1-based: the n-th use of the grant. */
    use: z.number().int().positive(),
    owner: address,
    operator: address,
    /** datasetId(name) as the grant names it, and the table. */
    dataset: z.object({ id: hex32, table: z.string() }).strict(),
    statement: z.object({ digest: hex32, operation: z.enum(["read", "insert", "update", "delete"]) }).strict(),
    rowsAffected: z.number().int().nonnegative(),
    /** The trusted block the grant's state was proved at. */
    provedAt: z.object({ number: decimal, hash: hex32, timestamp: decimal }).strict(),
  })
  .strict();
export type OperatePredicate = z.infer<typeof operatePredicateSchema>;

/** Each kind's predicate part, found in the predicate under the kind's own name. */
export const kindPredicateSchemas = {
  task: taskPredicateSchema,
  operate: operatePredicateSchema,
} as const satisfies Record<JobKind, z.ZodType>;
export type KindPredicates = { [K in JobKind]: z.infer<(typeof kindPredicateSchemas)[K]> };
