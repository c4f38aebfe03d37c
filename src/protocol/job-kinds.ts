/**
 * The kinds of confidential work an enclave runs, as every party names them
 * (gate requests, provenance predicates, anchors), and each kind's part of
 * the provenance predicate. A new job kind adds its name here, its predicate
 * schema below, and its module under src/enclave/jobs/.
 */
import { z } from "zod";
import { addressSchema as address, lowerHex32Schema as hex32 } from "./schemas.ts";

export const JOB_KINDS = ["task"] as const;
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

/** Each kind's predicate part, found in the predicate under the kind's own name. */
export const kindPredicateSchemas = { task: taskPredicateSchema } as const satisfies Record<JobKind, z.ZodType>;
export type KindPredicates = { [K in JobKind]: z.infer<(typeof kindPredicateSchemas)[K]> };
