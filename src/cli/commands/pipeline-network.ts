/**
 * The pipeline commands against a running network (--network D --account i):
 * `create <file>` (the owner verifies the enclaves under its policy, seals
 * the pipeline to them and registers it), `run <id>` (waits for the next run
 * the candidates anchor, then verifies it: on a running network runs are the
 * nodes' to start, when the schedule says), `runs <id>`, `status <id>`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { getContractEvents } from "viem/actions";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { pipelinesAbi } from "../../chain/abi/Pipelines.ts";
import { readPipeline, readPipelineRuns } from "../../chain/actions/read-pipeline.ts";
import { listVerifiedEnclaves } from "../../sdk/enclaves.ts";
import { loadPipelineFile, PipelineFileError } from "../../sdk/pipeline-file.ts";
import { createPipeline, verifyPipelineRun } from "../../sdk/pipelines.ts";
import { parsePositiveInt } from "../args.ts";
import { UsageError } from "../errors.ts";
import { connectFromFlags, resolveNetwork, type NetworkFlags } from "../network-options.ts";
import { printJson, type Reporter } from "../output.ts";

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
      else process.stdout.write(`pipeline ${made.pipelineId}\n  candidates ${verified.map((v) => v.signer).join(", ")}\n  schedule ${spec.schedule ?? "(none: runs only when a node is asked)"}\n  package ${made.packageCid}\n`);
      return 0;
    } finally {
      await network.close();
    }
  }
  const pipelineId = pipelineIdArg(target);
  const { network, contract, policy } = await connect(flags, true);
  try {
    const state = await readPipeline(network.writer, contract, pipelineId);
    if (!state.exists) throw new UsageError(`no pipeline ${pipelineId} on this network`);
    if (sub === "status") {
      const [registered] = await getContractEvents(network.writer, { address: contract, abi: pipelinesAbi, eventName: "PipelineRegistered", args: { pipelineId }, fromBlock: 0n, strict: true });
      const runs = await readPipelineRuns(network.writer, contract, pipelineId);
      const last = runs.at(-1);
      let candidates = [...(registered?.args.candidates ?? [])];
      for (const e of await getContractEvents(network.writer, { address: contract, abi: pipelinesAbi, eventName: "CandidateSet", args: { pipelineId }, fromBlock: 0n, strict: true })) {
        candidates = candidates.filter((c) => c.toLowerCase() !== e.args.enclave.toLowerCase());
        if (e.args.allowed) candidates.push(e.args.enclave);
      }
      const status = { pipeline: pipelineId.toString(), owner: state.owner, digest: state.pipelineDigest, schedule: registered?.args.schedule ?? null, candidates, retired: state.retired, runs: state.runs, cursor: state.cursor, lastRun: last ? { run: last.run, runId: last.runId, read: Number(last.recordsRead), written: Number(last.recordsWritten), enclave: last.enclave } : null };
      if (flags.json) printJson(status);
      else process.stdout.write(`pipeline ${pipelineId}${state.retired ? " (retired)" : ""}\n  owner ${state.owner}\n  schedule ${status.schedule || "(none)"}\n  candidates ${status.candidates.join(", ")}\n  runs ${state.runs}, cursor ${state.cursor}\n${last ? `  last run ${last.run} (${last.runId}) by ${last.enclave}: read ${last.recordsRead}, written ${last.recordsWritten}\n` : ""}`);
      return 0;
    }
    if (sub === "runs") {
      const runs = await readPipelineRuns(network.writer, contract, pipelineId);
      if (flags.json) printJson({ pipeline: pipelineId.toString(), runs: runs.map((r) => ({ run: r.run, runId: r.runId, enclave: r.enclave, read: Number(r.recordsRead), written: Number(r.recordsWritten), cursorBefore: r.cursorBefore, cursorAfter: r.cursorAfter, provenanceDigest: r.provenanceDigest, transactionHash: r.transactionHash })) });
      else process.stdout.write(runs.map((r) => `run ${r.run} ${r.runId} by ${r.enclave}: read ${r.recordsRead}, written ${r.recordsWritten}\n`).join("") || "no runs yet\n");
      return 0;
    }
    // run <id>: wait for the next anchored run, then verify it.
    const timeoutMs = parsePositiveInt(flags["timeout-ms"], "--timeout-ms", 10 * 60_000);
    reporter.step(`waiting for the next run of pipeline ${pipelineId} (the candidate whose turn it is runs it when the schedule says; --timeout-ms ${timeoutMs})`);
    const deadline = Date.now() + timeoutMs;
    let runs = await readPipelineRuns(network.writer, contract, pipelineId);
    while (runs.length <= state.runs && Date.now() < deadline) {
      await sleep(500);
      runs = await readPipelineRuns(network.writer, contract, pipelineId);
    }
    const next = runs[state.runs];
    if (!next) throw new UsageError(`no run of pipeline ${pipelineId} was anchored within ${timeoutMs} ms; check its schedule ('pipeline status ${pipelineId}') and that its candidate nodes are up`);
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
