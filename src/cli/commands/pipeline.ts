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
import { networkParseOptions, signerParseOptions, wantsRemoteNetwork } from "../network-options.ts";
import { pipelineNetworkCommand } from "./pipeline-network.ts";

/** Connector failures the owner fixes in the pipeline file or its source: exit 2. */
const ownerFixable = /\((CONNECTOR_(BAD_DESCRIPTOR|UNREACHABLE|AUTH_FAILED|UNKNOWN_TABLE|FILE_NOT_FOUND|CURSOR_COLUMN_MISSING|BAD_CURSOR)|PIPELINE_(TRANSFORM_FAILED|BAD_DESTINATION))\)/;

export async function pipelineCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "run" && sub !== "create" && sub !== "runs" && sub !== "status") throw new UsageError(`unknown pipeline command '${sub ?? ""}'\n\n${pipelineUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      "data-dir": { type: "string" },
      "timeout-ms": { type: "string" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      ...networkParseOptions,
      ...signerParseOptions,
    },
  });
  if (positionals.length !== 1) throw new UsageError(`pipeline ${sub} takes exactly one ${sub === "create" || sub === "run" ? "pipeline file or id" : "pipeline id"}\n\n${pipelineUsage}`);
  const file = positionals[0]!;
  const remote = wantsRemoteNetwork(values, values["data-dir"] !== undefined);
  if (sub !== "run" || /^\d+$/.test(file)) {
    if (!remote) throw new UsageError(`pipeline ${sub} ${sub === "run" ? "<id> " : ""}works on a running network: give --network <dir> (or CLOISTER_NETWORK) and --account <i>`);
    return pipelineNetworkCommand(sub, file, values, values.quiet || values.json ? silentReporter : stderrReporter());
  }
  if (remote && values["data-dir"] === undefined) throw new UsageError("on a running network a pipeline is created with 'pipeline create <file>' and its runs are the nodes' ('pipeline run <id>' asks them for one)");
  let spec;
  try {
    spec = await loadPipelineFile(file);
  } catch (error) {
    if (error instanceof PipelineFileError) throw new UsageError(`bad pipeline file ${error.message}`, { cause: error });
    throw error;
  }
  const reporter = values.quiet || values.json ? silentReporter : stderrReporter();
  reporter.step("starting an embedded network");
  // This command runs the pipeline itself: the nodes' schedulers stay off so they do not race it.
  const network = await startEmbeddedNetwork({ dataDir: values["data-dir"], pipelines: false, onStep: (m) => reporter.detail(m) });
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
