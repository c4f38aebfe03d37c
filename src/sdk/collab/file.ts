/**
 * The collaboration file (issue 13): who takes part, their datasets (connector descriptors), the compute
 * party, the exact SQL, the output policy and the recipient. Relative paths resolve against the file's
 * folder (the enclaves get that folder as baseDir; the terms name the descriptors as written, without
 * credentials). Every problem is a CollabFileError that names the key and what to write instead.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parseDescriptor } from "../../enclave/connectors/index.ts";
import { splitPin } from "../../enclave/connectors/endpoint.ts";
import { parseOutputPolicy, type OutputPolicy } from "../../enclave/cleanroom/policy.ts";
import { chainViewSchema } from "../../protocol/operate.ts";
import { CloisterError } from "../../util/base-error.ts";

export class CollabFileError extends CloisterError<"COLLAB_FILE_INVALID"> {}

const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, "must be a name of letters, digits, _ and - (starting with a letter or _)");
const pin = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be the hex SHA-256 of the server certificate's DER (64 hex digits)");
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a plain SQL identifier (it is the query's table name)");

export const collabFileSchema = z.strictObject({
  name: z.string().min(1).max(200),
  parties: z
    .array(z.strictObject({ name, account: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be the party's 0x address (it signs the approval)").optional(), datasets: z.record(tableName, z.record(z.string(), z.unknown())).refine((d) => Object.keys(d).length > 0, "needs at least one dataset"), chainView: chainViewSchema.optional() }))
    .min(2, "a collaboration needs at least 2 parties")
    .max(32),
  compute: name,
  query: z.string().min(1),
  policy: z.record(z.string(), z.unknown()),
  /**
   * Who receives the result: a party's node (sealed to its key), or, from inside the compute enclave over TLS
   * with the server certificate pinned (`pin`: hex SHA-256 of its DER), a PostgreSQL table or an HTTPS endpoint.
   */
  recipient: z.union([
    z.strictObject({ party: name }),
    z.strictObject({ postgres: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// url"), table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a plain table name"), pin }),
    z.strictObject({ https: z.string().regex(/^https:\/\/[^/?#]+/, "must be an https:// url"), pin }),
  ]),
  /** How often the fixed query may run (the contract's maxRuns); 10 unless given. */
  maxRuns: z.number().int().min(1).max(2 ** 32 - 1).optional(),
  /** The compute enclave's DuckDB memory limit, and how long it waits for every partner's rows (120 s by default). */
  limits: z.strictObject({ memoryMb: z.number().int().min(64).max(1_048_576).optional(), partnerTimeoutMs: z.number().int().min(1_000).max(3_600_000).optional() }).optional(),
  /** Whether simulated TEEs may take part (development networks); true unless given. */
  allowSimulated: z.boolean().optional(),
});

export type CollabFile = z.infer<typeof collabFileSchema>;

export interface LoadedCollabFile {
  path: string;
  /** The file's folder: relative dataset paths resolve against it. */
  baseDir: string;
  file: CollabFile;
  policy: OutputPolicy;
  computeIndex: number;
  /** The recipient party's index; -1 for a table or an endpoint. */
  recipientIndex: number;
}

export async function loadCollabFile(path: string): Promise<LoadedCollabFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new CollabFileError("COLLAB_FILE_INVALID", `cannot read the collaboration file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check the path`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CollabFileError("COLLAB_FILE_INVALID", `${path} is not JSON: ${(e as Error).message}`);
  }
  return parseCollabFile(json, resolve(path));
}

export function parseCollabFile(json: unknown, path: string): LoadedCollabFile {
  const parsed = collabFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: ${issue.path.join(".") || "(top level)"} ${issue.message}`, { details: { key: issue.path.join(".") } });
  }
  const file = parsed.data;
  const names = file.parties.map((p) => p.name);
  if (new Set(names).size !== names.length) throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: parties: two parties are called the same; give each a unique name`);
  const computeIndex = names.indexOf(file.compute);
  if (computeIndex < 0) throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: compute names "${file.compute}", which is not a party (${names.join(", ")})`);
  const recipientIndex = "party" in file.recipient ? names.indexOf(file.recipient.party) : -1;
  if ("party" in file.recipient && recipientIndex < 0) throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: recipient.party names "${(file.recipient as { party: string }).party}", which is not a party (${names.join(", ")})`);
  const tables = new Set<string>();
  for (const party of file.parties) {
    for (const [table, descriptor] of Object.entries(party.datasets)) {
      if (tables.has(table.toLowerCase())) throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: dataset "${table}" is named by two parties; dataset names are the query's tables and must be unique`);
      tables.add(table.toLowerCase());
      try {
        parseDescriptor(splitPin(descriptor).descriptor);
      } catch (e) {
        throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: parties.${party.name}.datasets.${table}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  let policy: OutputPolicy;
  try {
    policy = parseOutputPolicy(file.policy);
  } catch (e) {
    throw new CollabFileError("COLLAB_FILE_INVALID", `${path}: policy: ${(e as Error).message}`, { cause: e });
  }
  return { path, baseDir: dirname(path), file, policy, computeIndex, recipientIndex };
}
