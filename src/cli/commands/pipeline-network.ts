/**
 * The pipeline commands against a running network (--network D --account i):
 * `create <file>` (the owner verifies the enclaves under its policy, seals
 * the pipeline to them and registers it), `run <id>` (the owner requests a
 * run on chain; the candidate whose turn it is runs it, the next one after the
 * failover deadline; the command waits for the run anchored after the request
 * and verifies it), `runs <id>`, `status <id>`.
 */
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { readPipeline, readPipelineCandidates, readPipelineRuns } from "../../chain/actions/read-pipeline.ts";
import { requestPipelineRun } from "../../chain/actions/register-pipeline.ts";
import { requestTurn } from "../../protocol/schedule.ts";
import { listVerifiedEnclaves } from "../../sdk/enclaves.ts";
import { loadPipelineFile, PipelineFileError } from "../../sdk/pipeline-file.ts";
import { createPipeline, verifyPipelineRun, waitForRunAfter } from "../../sdk/pipelines.ts";
import { CloisterError } from "../../util/base-error.ts";
import { parsePositiveInt } from "../args.ts";
import { UsageError } from "../errors.ts";
import { connectFromFlags, resolveNetwork, type NetworkFlags } from "../network-options.ts";
import { printJson, type Reporter } from "../output.ts";

export class PipelineRequestError extends CloisterError<"PIPELINE_RUN_TIMEOUT"> {}

type Flags = NetworkFlags & { account?: string; json?: boolean; "timeout-ms"?: string };

function pipelineIdArg(text: string | undefined): bigint {
  if (!text || !/^(\d+|0x[0-9a-fA-F]{1,64})$/.test(text)) throw new UsageError(`a pipeline id is a number (as 'pipeline create' printed it), got '${text ?? ""}'`);
  return BigInt(text);
}

/** `readOnly`: the command sends nothing, so without --account (or CLOISTER_PRIVATE_KEY) any devnet account serves to read. */
async function connect(flags: Flags, readOnly = false) {
  const network = await connectFromFlags(readOnly && flags.account === undefined && !process.env.CLOISTER_PRIVATE_KEY ? { ...flags, account: "0" } : flags);
  const contract = network.deployment.pipelines;
  if (!contract) {
    await network.close();
    throw new UsageError("this network's deployment names no Pipelines contract; start the devnet with this version of Cloister");
  }
  const policy = policyForRole((await resolveNetwork(flags)).manifest, TASK_ROLE);
  return { network, contract, policy };
}

export async function pipelineNetworkCommand(sub: string, target: string | undefined, flags: Flags, reporter: Reporter): Promise<number> {
  if (sub === "create") {
    if (!target) throw new UsageError("pipeline create takes a pipeline file");
    let spec;
    try {
      spec = await loadPipelineFile(target);
    } catch (error) {
      if (error instanceof PipelineFileError) throw new UsageError(`bad pipeline file ${error.message}`, { cause: error });
      throw error;
    }
    const { network, contract, policy } = await connect(flags);
    try {
      const { verified, rejected } = await listVerifiedEnclaves({ reader: network.writer, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy });
      for (const r of rejected) reporter.detail(`rejected ${r.signer}: ${r.reason}`);
      if (verified.length === 0) throw new UsageError("no enclave of this network verifies under your policy: there is no one to seal the pipeline to");
      reporter.step(`sealing the pipeline to ${verified.length} verified enclave(s)`);
      const made = await createPipeline({ writer: network.writer, store: network.store, contract, spec, candidates: verified });
      if (flags.json) printJson({ pipeline: made.pipelineId.toString(), digest: made.pipelineDigest, package: made.packageCid, candidates: verified.map((v) => v.signer), schedule: spec.schedule, transactionHash: made.transactionHash });
      else process.stdout.write(`pipeline ${made.pipelineId}\n  candidates ${verified.map((v) => v.signer).join(", ")}\n  schedule ${spec.schedule ?? `(none: runs when you request one: 'pipeline run ${made.pipelineId}')`}\n  package ${made.packageCid}\n`);
      return 0;
    } finally {
      await network.close();
    }
  }
  const pipelineId = pipelineIdArg(target);
  const { network, contract, policy } = await connect(flags, sub !== "run");
  try {
    const state = await readPipeline(network.writer, contract, pipelineId);
    if (!state.exists) throw new UsageError(`no pipeline ${pipelineId} on this network`);
    if (sub === "status") {
      const { schedule, candidates } = await readPipelineCandidates(network.writer, contract, pipelineId);
      const runs = await readPipelineRuns(network.writer, contract, pipelineId);
      const last = runs.at(-1);
      const status = { pipeline: pipelineId.toString(), owner: state.owner, digest: state.pipelineDigest, schedule: schedule ?? null, candidates, retired: state.retired, runs: state.runs, requests: state.requests, cursor: state.cursor, lastRun: last ? { run: last.run, runId: last.runId, read: Number(last.recordsRead), written: Number(last.recordsWritten), enclave: last.enclave } : null };
      if (flags.json) printJson(status);
      else process.stdout.write(`pipeline ${pipelineId}${state.retired ? " (retired)" : ""}\n  owner ${state.owner}\n  schedule ${status.schedule || "(none)"}\n  candidates ${status.candidates.join(", ")}\n  runs ${state.runs} (${state.requests} requested), cursor ${state.cursor}\n${last ? `  last run ${last.run} (${last.runId}) by ${last.enclave}: read ${last.recordsRead}, written ${last.recordsWritten}\n` : ""}`);
      return 0;
    }
    if (sub === "runs") {
      const runs = await readPipelineRuns(network.writer, contract, pipelineId);
      if (flags.json) printJson({ pipeline: pipelineId.toString(), runs: runs.map((r) => ({ run: r.run, runId: r.runId, enclave: r.enclave, read: Number(r.recordsRead), written: Number(r.recordsWritten), cursorBefore: r.cursorBefore, cursorAfter: r.cursorAfter, provenanceDigest: r.provenanceDigest, transactionHash: r.transactionHash })) });
      else process.stdout.write(runs.map((r) => `run ${r.run} ${r.runId} by ${r.enclave}: read ${r.recordsRead}, written ${r.recordsWritten}\n`).join("") || "no runs yet\n");
      return 0;
    }
    // run <id>: the owner requests a run; the nodes serve it as a due slot (host/pipeline-scheduler.ts).
    const timeoutMs = parsePositiveInt(flags["timeout-ms"], "--timeout-ms", 10 * 60_000);
    const me = network.writer.account.address;
    if (state.owner.toLowerCase() !== me.toLowerCase()) throw new UsageError(`only the owner ${state.owner} of pipeline ${pipelineId} can request a run, and you are ${me}: pass the owner's --account (or CLOISTER_PRIVATE_KEY); 'pipeline runs ${pipelineId}' lists its runs to anyone`);
    if (state.retired) throw new UsageError(`pipeline ${pipelineId} is retired: no run of it can be anchored any more; create the pipeline again ('pipeline create <file>') to run its file`);
    const { candidates } = await readPipelineCandidates(network.writer, contract, pipelineId);
    if (candidates.length === 0) throw new UsageError(`pipeline ${pipelineId} has no candidate enclave left to run it; create it again ('pipeline create <file>') with this network's enclaves`);
    const request = await requestPipelineRun(network.writer, contract, pipelineId);
    const first = candidates.find((c) => requestTurn(request.request, 0, candidates, c, 1)?.mine);
    reporter.step(`requested run ${request.request} of pipeline ${pipelineId} (block ${request.blockNumber}, ${request.gasUsed} gas)`);
    reporter.detail(`candidate ${first} runs it now; if it does not, the next candidate after the nodes' failover deadline, and so on around ${candidates.length} candidate(s)`);
    reporter.step(`waiting for a run anchored after the request (--timeout-ms ${timeoutMs})`);
    const next = await waitForRunAfter({ reader: network.writer, contract, pipelineId, afterBlock: request.blockNumber, timeoutMs });
    if (!next) {
      throw new PipelineRequestError(
        "PIPELINE_RUN_TIMEOUT",
        `no candidate anchored a run of pipeline ${pipelineId} within ${timeoutMs} ms of request ${request.request}: check that the nodes of its candidates (${candidates.join(", ")}) are up (on a devnet: its 'devnet up' process and the nodes' logs), then watch 'pipeline runs ${pipelineId}' (the request stays due) or run again with a longer --timeout-ms`,
        { details: { pipeline: pipelineId.toString(), request: request.request, timeoutMs } },
      );
    }
    reporter.detail(`run ${next.run} anchored by ${next.enclave} in ${next.transactionHash}`);
    const { verified } = await listVerifiedEnclaves({ reader: network.writer, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy });
    const v = await verifyPipelineRun({ reader: network.writer, store: network.store, contract, pipelineId, runId: next.runId, enclaves: verified });
    for (const c of v.checks) reporter.detail(`✓ ${c}`);
    if (flags.json) printJson({ pipeline: pipelineId.toString(), run: next.runId, read: Number(next.recordsRead), written: Number(next.recordsWritten), cursor: next.cursorAfter, provenance: v.provenanceCid, verified: true });
    else process.stdout.write(`run ${next.run} (${next.runId}): read ${next.recordsRead}, written ${next.recordsWritten}\nprovenance ${v.provenanceCid}\nverified\n`);
    return 0;
  } finally {
    await network.close();
  }
}
