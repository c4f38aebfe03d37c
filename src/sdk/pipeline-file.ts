/**
 * A pipeline file (issue 14's JSON) as the owner's tools read it: checked
 * against the connector descriptors, relative paths resolved against the
 * file's folder, a transform program read in. The result is the spec the
 * owner seals to the candidate enclaves (src/protocol/pipeline-package.ts).
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { parseDescriptor, parseDestination } from "../enclave/connectors/index.ts";
import { parseNatsDestination } from "../enclave/connectors/descriptor.ts";
import { splitPin } from "../enclave/connectors/endpoint.ts";
import { parseFileDestination } from "../enclave/pipeline/file-destination.ts";
import { httpsDestinationSchema, httpsSourceSchema } from "../enclave/pipeline/https.ts";
import type { PipelineSpec, SealedTransform } from "../protocol/pipeline-package.ts";
import { parseSchedule } from "../protocol/schedule.ts";
import { CloisterError } from "../util/base-error.ts";

export class PipelineFileError extends CloisterError<"PIPELINE_FILE_INVALID"> {}

const fileSchema = z
  .object({
    name: z.string().min(1),
    source: z.looseObject({ type: z.string() }),
    transform: z.union([z.object({ sql: z.string().min(1) }).strict(), z.object({ program: z.string().min(1) }).strict()]).optional(),
    destination: z.looseObject({ type: z.string() }),
    schedule: z.string().min(1).optional(),
    /** JSON-RPC endpoints the enclave proves the pipeline's chain state from; quorum defaults to a majority. */
    chainView: z
      .object({ endpoints: z.array(z.url({ protocol: /^https?$/ })).min(1), quorum: z.number().int().positive().optional(), finalityDepth: z.number().int().nonnegative().optional() })
      .strict()
      .optional(),
  })
  .strict();


function fail(path: string, problem: string): never {
  throw new PipelineFileError("PIPELINE_FILE_INVALID", `${path}: ${problem}`, { details: { file: path } });
}

export async function loadPipelineFile(path: string): Promise<PipelineSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return fail(path, "cannot read the pipeline file; check the path");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(path, `not JSON (${(e as Error).message})`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) return fail(path, parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`).join("; "));
  const file = parsed.data;
  const dir = dirname(resolve(path));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const source = { ...file.source };
  const destination = { ...file.destination };
  try {
    if (source.type === "https") httpsSourceSchema.parse(source);
    // A database endpoint's optional `pin` is checked here, then left for the enclave (run-pipeline.ts).
    else parseDescriptor(splitPin(source).descriptor);
    if (destination.type === "csv" || destination.type === "parquet") parseFileDestination(destination);
    else if (destination.type === "https") httpsDestinationSchema.parse(destination);
    else if (destination.type === "nats") parseNatsDestination(destination);
    else parseDestination(splitPin(destination).descriptor);
  } catch (e) {
    const message = e instanceof z.ZodError ? e.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") : (e as Error).message;
    return fail(path, message);
  }
  if (typeof source.path === "string") source.path = abs(source.path);
  if (typeof destination.path === "string") destination.path = abs(destination.path);
  let transform: SealedTransform = { kind: "copy" };
  if (file.transform && "sql" in file.transform) transform = { kind: "sql", sql: file.transform.sql };
  if (file.transform && "program" in file.transform) {
    const programPath = abs(file.transform.program);
    let programSource: string;
    try {
      programSource = await readFile(programPath, "utf8");
    } catch {
      return fail(path, `transform.program: cannot read ${programPath}`);
    }
    transform = { kind: "program", name: file.transform.program, source: programSource };
  }
  if (file.schedule !== undefined) {
    try {
      parseSchedule(file.schedule);
    } catch (e) {
      return fail(path, `schedule: ${(e as Error).message}`);
    }
  }
  const cv = file.chainView;
  if (cv && cv.quorum !== undefined && (cv.quorum > cv.endpoints.length || 2 * cv.quorum <= cv.endpoints.length)) return fail(path, `chainView.quorum: ${cv.quorum} of ${cv.endpoints.length} endpoints is not a majority`);
  const chainView = cv ? { endpoints: cv.endpoints, quorum: cv.quorum ?? Math.floor(cv.endpoints.length / 2) + 1, finalityDepth: cv.finalityDepth ?? 0 } : undefined;
  return { name: file.name, source, transform, destination, schedule: file.schedule ?? null, ...(chainView ? { chainView } : {}) };
}
