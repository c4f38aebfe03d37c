import { z } from "zod";
import { ConnectorError } from "./errors.ts";

/**
 * Connector descriptors: the shapes issues 13 (a clean-room party's dataset)
 * and 14 (a pipeline's source) fix. Strict objects, so a misspelt key is an
 * error rather than a silently ignored option.
 */

const nonEmpty = z.string().min(1);
const cursorColumn = nonEmpty.describe("column whose values increase with new rows; reads return rows past the last cursor");

export const fileDescriptorSchema = z.strictObject({
  type: z.enum(["csv", "parquet"]),
  path: nonEmpty,
  cursor: cursorColumn.optional(),
});

const databaseUrl = (schemes: readonly string[]) =>
  nonEmpty.refine((url) => {
    try {
      return schemes.includes(new URL(url).protocol);
    } catch {
      return false;
    }
  }, `must be a URL with scheme ${schemes.join(" or ")}`);

const databaseFields = {
  table: nonEmpty.optional(),
  query: nonEmpty.optional(),
  cursor: cursorColumn.optional(),
};

const exactlyOneSource = (d: { table?: string | undefined; query?: string | undefined }) => (d.table === undefined) !== (d.query === undefined);
const oneSourceMessage = { message: "give exactly one of table or query" };

export const postgresDescriptorSchema = z
  .strictObject({ type: z.literal("postgres"), url: databaseUrl(["postgres:", "postgresql:"]), ...databaseFields })
  .refine(exactlyOneSource, oneSourceMessage);

export const mysqlDescriptorSchema = z
  .strictObject({ type: z.literal("mysql"), url: databaseUrl(["mysql:", "mariadb:"]), ...databaseFields })
  .refine(exactlyOneSource, oneSourceMessage);

export const natsDescriptorSchema = z.strictObject({
  type: z.literal("nats"),
  url: databaseUrl(["nats:"]).optional(),
  stream: nonEmpty,
  subject: nonEmpty.optional(),
});

export const connectorDescriptorSchema = z.union([fileDescriptorSchema, postgresDescriptorSchema, mysqlDescriptorSchema, natsDescriptorSchema]);

export type FileDescriptor = z.infer<typeof fileDescriptorSchema>;
export type PostgresDescriptor = z.infer<typeof postgresDescriptorSchema>;
export type MysqlDescriptor = z.infer<typeof mysqlDescriptorSchema>;
export type NatsDescriptor = z.infer<typeof natsDescriptorSchema>;
export type ConnectorDescriptor = z.infer<typeof connectorDescriptorSchema>;
export type ConnectorType = ConnectorDescriptor["type"];

/**
 * Where a pipeline writes (issue 14's destination): a database table, with
 * `append` (insert), `replace` (the table's rows become exactly these) or
 * `upsert` (insert, or update the row with the same `key`).
 */
const destinationFields = {
  table: nonEmpty,
  mode: z.enum(["append", "replace", "upsert"]),
  key: z.array(nonEmpty).min(1).optional(),
};
const keyOnlyForUpsert = (d: { mode: string; key?: string[] | undefined }) => (d.mode === "upsert") === (d.key !== undefined);
const keyMessage = { message: "upsert needs key (the columns that identify a row); append and replace take no key", path: ["key"] };

const postgresDestinationSchema = z.strictObject({ type: z.literal("postgres"), url: databaseUrl(["postgres:", "postgresql:"]), ...destinationFields }).refine(keyOnlyForUpsert, keyMessage);
const mysqlDestinationSchema = z.strictObject({ type: z.literal("mysql"), url: databaseUrl(["mysql:", "mariadb:"]), ...destinationFields }).refine(keyOnlyForUpsert, keyMessage);
export const destinationDescriptorSchema = z.union([postgresDestinationSchema, mysqlDestinationSchema]);

/**
 * A JetStream stream as a destination: each row one JSON message on `subject` (which the stream must
 * capture). A stream is a log, so the only mode is append.
 */
export const natsDestinationSchema = z.strictObject({
  type: z.literal("nats"),
  url: databaseUrl(["nats:"]).optional(),
  stream: nonEmpty,
  subject: nonEmpty,
  mode: z.literal("append", { error: "a JetStream stream is a log: the only mode is append (replace and upsert need a table)" }).default("append"),
});
export type NatsDestination = z.infer<typeof natsDestinationSchema>;

export function parseNatsDestination(raw: unknown): NatsDestination {
  const result = natsDestinationSchema.safeParse(raw);
  if (!result.success) {
    const problems = [...new Set(result.error.issues.map((issue) => `${issue.path.join(".") || "(descriptor)"}: ${issue.message}`))];
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `bad nats destination descriptor: ${problems.join("; ")}`, { details: { type: "nats", problems } });
  }
  return result.data;
}
export type DestinationDescriptor = z.infer<typeof destinationDescriptorSchema>;

export function parseDestination(raw: unknown): DestinationDescriptor {
  const type = (raw as { type?: unknown } | null)?.type;
  if (type !== "postgres" && type !== "mysql") {
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `a table destination needs "type" to be postgres or mysql`, { details: { type: typeof type === "string" ? type : null } });
  }
  const result = (type === "postgres" ? postgresDestinationSchema : mysqlDestinationSchema).safeParse(raw);
  if (!result.success) {
    const problems = [...new Set(result.error.issues.map((issue) => `${issue.path.join(".") || "(descriptor)"}: ${issue.message}`))];
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `bad ${type} destination descriptor: ${problems.join("; ")}`, { details: { type, problems } });
  }
  return result.data;
}

const schemaByType = {
  csv: fileDescriptorSchema,
  parquet: fileDescriptorSchema,
  postgres: postgresDescriptorSchema,
  mysql: mysqlDescriptorSchema,
  nats: natsDescriptorSchema,
} as const;

/** Names the type, so the message can list the valid ones without echoing any url. */
const knownTypes = Object.keys(schemaByType).join(", ");

/**
 * Checks a descriptor. The error names the offending fields and never quotes
 * input values (a url may carry a password).
 */
export function parseDescriptor(raw: unknown): ConnectorDescriptor {
  const type = (raw as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !(type in schemaByType)) {
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `connector descriptor needs "type" to be one of ${knownTypes}`, { details: { type: typeof type === "string" ? type : null } });
  }
  const result = schemaByType[type as ConnectorType].safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".") || "(descriptor)"}: ${issue.message}`);
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `bad ${type} connector descriptor: ${problems.join("; ")}`, { details: { type, problems } });
  }
  return result.data;
}
