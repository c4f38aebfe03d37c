/**
 * The kinds of confidential work an enclave runs, as every party names them
 * (gate requests, provenance predicates, anchors), and each kind's part of
 * the provenance predicate. A new job kind adds its name here, its predicate
 * schema below, and its module under src/enclave/jobs/.
 */
import { z } from "zod";
import { addressSchema as address, lowerHex32Schema as hex32 } from "./schemas.ts";

export const JOB_KINDS = ["task", "collab-partner", "collab-compute"] as const;
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

/** One dataset as a clean-room run read it: the SHA-256 of its rows in the connector's encoding (docs/connectors.md), or with `of: "file"` of the file DuckDB read in place, and its row count. */
const collabDatasetRecord = z
  .object({ party: z.string(), name: z.string(), digest: hex32, rows: z.number().int().nonnegative(), of: z.enum(["rows", "file"]).optional() })
  .strict();
/** The collaboration a clean-room job belongs to. */
const collabRecord = { chainId: decimal, contract: address, collaborationId: decimal, runId: z.number().int().positive(), termsHash: hex32 };

/** A clean-room partner: which collaboration and run, its party, the datasets it read and sent, and the compute enclave it sealed them to. */
export const collabPartnerPredicateSchema = z
  .object({ ...collabRecord, party: z.number().int().nonnegative(), datasets: z.array(collabDatasetRecord), computeEnclave: z.object({ signer: address, measurement: z.string() }).strict() })
  .strict();

/** A clean-room run: the approved query and policy, every party's datasets and enclave, what was delivered and suppressed, epsilon spent. */
export const collabComputePredicateSchema = z
  .object({
    ...collabRecord,
    queryDigest: hex32,
    policyDigest: hex32,
    policy: z.object({ identity: z.string(), minGroupSize: z.number(), allowedAggregates: z.array(z.string()).optional(), dp: z.object({ epsilon: z.number(), budget: z.number() }).strict().optional() }).strict(),
    parties: z.array(z.object({ index: z.number().int().nonnegative(), name: z.string(), account: address, enclave: z.object({ signer: address, measurement: z.string() }).strict() }).strict()),
    datasets: z.array(collabDatasetRecord),
    rowsDelivered: z.number().int().nonnegative(),
    rowsSuppressed: z.number().int().nonnegative(),
    /** Decimal epsilon this run spent ("0" without DP). */
    epsilonSpent: z.string(),
    recipient: z.object({ descriptor: z.string(), pin: hex32 }).strict(),
  })
  .strict();
export type CollabComputePredicate = z.infer<typeof collabComputePredicateSchema>;

/** Each kind's predicate part, found in the predicate under the kind's own name. */
export const kindPredicateSchemas = {
  task: taskPredicateSchema,
  "collab-partner": collabPartnerPredicateSchema,
  "collab-compute": collabComputePredicateSchema,
} as const satisfies Record<JobKind, z.ZodType>;
export type KindPredicates = { [K in JobKind]: z.infer<(typeof kindPredicateSchemas)[K]> };
