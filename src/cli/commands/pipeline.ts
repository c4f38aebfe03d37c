/**
 * `cloister pipeline run <file> [--data-dir D] [--json]`: runs a pipeline file
 * once on an embedded network (again with the same --data-dir: the next,
 * incremental run), then verifies the run's anchor and provenance.
 */
import { parseArgs } from "node:util";
import { startEmbeddedNetwork } from "../../devnet/embedded.ts";
import { EnclaveError } from "../../enclave/errors.ts";
import { loadPipelineFile, PipelineFileError } from "../../sdk/pipeline-file.ts";
import { runPipelineFile } from "../../sdk/pipeline-session.ts";
import { UsageError } from "../errors.ts";
import { printJson, silentReporter, stderrReporter } from "../output.ts";
import { pipelineUsage } from "../usage.ts";

/** Connector failures the owner fixes in the pipeline file or its source: exit 2. */
const ownerFixable = /\((CONNECTOR_(BAD_DESCRIPTOR|UNREACHABLE|AUTH_FAILED|UNKNOWN_TABLE|FILE_NOT_FOUND|CURSOR_COLUMN_MISSING|BAD_CURSOR)|PIPELINE_(TRANSFORM_FAILED|BAD_DESTINATION))\)/;

export async function pipelineCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "run") throw new UsageError(`unknown pipeline command '${sub ?? ""}'\n\n${pipelineUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { "data-dir": { type: "string" }, json: { type: "boolean", default: false }, quiet: { type: "boolean", default: false } },
  });
  if (positionals.length !== 1) throw new UsageError(`pipeline run takes exactly one pipeline file\n\n${pipelineUsage}`);
  const file = positionals[0]!;
  let spec;
  try {
    spec = await loadPipelineFile(file);
  } catch (error) {
    if (error instanceof PipelineFileError) throw new UsageError(`bad pipeline file ${error.message}`, { cause: error });
    throw error;
  }
  const reporter = values.quiet || values.json ? silentReporter : stderrReporter();
  reporter.step("starting an embedded network");
  const network = await startEmbeddedNetwork({ dataDir: values["data-dir"], onStep: (m) => reporter.detail(m) });
  try {
    const { deployment } = network;
    const session = { owner: network.requester, store: network.store, contract: deployment.pipelines!, registry: deployment.registry, policy: network.policy, dataDir: network.dataDir };
    let result;
    try {
      result = await runPipelineFile(session, file, spec, network.nodes[0]!, (m) => reporter.step(m));
    } catch (error) {
      if (error instanceof EnclaveError && error.code === "PIPELINE_RUN_FAILED" && ownerFixable.test(error.message)) {
        throw new UsageError(`${error.message}; fix the pipeline file or its source and run again`, { cause: error });
      }
      throw error;
    }
    const { pipelineId, outcome, verified } = result;
    for (const check of verified.checks) reporter.detail(`✓ ${check}`);
    if (values.json) {
      printJson({ pipeline: pipelineId.toString(), run: outcome.runId, read: outcome.read, written: outcome.written, cursor: outcome.cursorAfter, provenance: outcome.provenanceCid, verified: true });
    } else {
      process.stdout.write(`pipeline ${pipelineId}\nrun ${outcome.run} (${outcome.runId}): read ${outcome.read}, written ${outcome.written}\ncursor ${outcome.cursorAfter}\nprovenance ${outcome.provenanceCid}\nverified\n`);
    }
    return 0;
  } finally {
    await network.close();
  }
}
