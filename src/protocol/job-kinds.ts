/**
 * The kinds of confidential work an enclave runs, as every party names them
 * (gate requests, provenance predicates, anchors), and each kind's part of
 * the provenance predicate. A new job kind adds its name here, its predicate
 * schema below, and its module under src/enclave/jobs/.
 */
import { z } from "zod";
import { addressSchema as address, lowerHex32Schema as hex32 } from "./schemas.ts";

export const JOB_KINDS = ["task", "pipeline", "operate", "collab-partner", "collab-compute"] as const;
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

/**
 * What a pipeline run's provenance says of it (issue 14): which pipeline of which contract, the run id and
 * the cursor digests it went from and to, the rows read, produced by the transform and written per stream,
 * and the dataset digests (src/enclave/connectors/digest.ts) of what was read and of what was written.
 * `resumed`: an earlier attempt of this run had already loaded the destination (its run marker was there),
 * so this attempt wrote nothing and repeats that attempt's counts, digest and cursor.
 */
export const pipelinePredicateSchema = z
  .object({
    chainId: decimal,
    contract: address,
    pipelineId: decimal,
    pipelineDigest: hex32,
    runId: hex32,
    cursorBefore: hex32,
    cursorAfter: hex32,
    source: z.object({ type: z.string(), read: z.number().int().nonnegative(), digest: z.string() }).strict(),
    transform: z.object({ kind: z.enum(["copy", "sql", "program"]), digest: hex32.nullable(), rows: z.number().int().nonnegative() }).strict(),
    destination: z.object({ type: z.string(), mode: z.string(), written: z.number().int().nonnegative(), digest: z.string() }).strict(),
    resumed: z.boolean(),
    /** The block at which the enclave proved the pipeline's cursor and digest itself (the owner's chain view endpoints); null: it took the host's claim. */
    chainProof: z.object({ block: decimal }).strict().nullable(),
  })
  .strict();
export type PipelinePredicate = z.infer<typeof pipelinePredicateSchema>;

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
    /** The trusted block the grant's state was proved at, and who chose it: a quorum of the owner's sealed endpoints, or the host. */
    provedAt: z.object({ number: decimal, hash: hex32, timestamp: decimal, chosenBy: z.enum(["owner-endpoints", "host"]) }).strict(),
  })
  .strict();
export type OperatePredicate = z.infer<typeof operatePredicateSchema>;
/**
 * One dataset as a clean-room run read it: the SHA-256 of its rows in the connector's encoding (docs/connectors.md),
 * or with `of: "file"` of the file's bytes, and the rows that entered the run; with `filter`, the approved query's
 * own conditions its party's enclave applied before sending it (`rows` counts the rows it kept).
 */
const collabDatasetRecord = z
  .object({ party: z.string(), name: z.string(), digest: hex32, rows: z.number().int().nonnegative(), of: z.enum(["rows", "file"]).optional(), filter: z.string().optional() })
  .strict();
/** The collaboration a clean-room job belongs to. */
const collabRecord = { chainId: decimal, contract: address, collaborationId: decimal, runId: z.number().int().positive(), termsHash: hex32 };
/** The block a party's enclave proved the collaboration's state at (approvals, runs, budget), chosen by a quorum of the party's own endpoints; absent when it named none. */
const collabProvedAt = z.object({ number: decimal, hash: hex32, timestamp: decimal, chosenBy: z.literal("party-endpoints") }).strict().optional();

/** A clean-room partner: which collaboration and run, its party, the datasets it read and sent, and the compute enclave it sealed them to. */
export const collabPartnerPredicateSchema = z
  .object({ ...collabRecord, party: z.number().int().nonnegative(), datasets: z.array(collabDatasetRecord), computeEnclave: z.object({ signer: address, measurement: z.string() }).strict(), provedAt: collabProvedAt })
  .strict();
export type CollabPartnerPredicate = z.infer<typeof collabPartnerPredicateSchema>;

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
    provedAt: collabProvedAt,
    /**
     * When the result left the enclave: "after-record-proved" (the compute party names chain endpoints: released
     * only once its enclave proved the run recorded with this result) or "at-compute" (handed to the host with the
     * signed Run; absent in records from before).
     */
    release: z.enum(["after-record-proved", "at-compute"]).optional(),
  })
  .strict();
export type CollabComputePredicate = z.infer<typeof collabComputePredicateSchema>;

/** Each kind's predicate part, found in the predicate under the kind's own name. */
export const kindPredicateSchemas = {
  task: taskPredicateSchema,
  pipeline: pipelinePredicateSchema,
  operate: operatePredicateSchema,
  "collab-partner": collabPartnerPredicateSchema,
  "collab-compute": collabComputePredicateSchema,
} as const satisfies Record<JobKind, z.ZodType>;
export type KindPredicates = { [K in JobKind]: z.infer<(typeof kindPredicateSchemas)[K]> };
