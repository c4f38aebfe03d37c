/**
 * One pipeline file run on a network whose node the caller holds (the
 * embedded network of `cloister pipeline run <file>` and the demo): the
 * first time the owner verifies the enclaves and creates the pipeline (its
 * id kept in `<dataDir>/pipelines.json` by file path and name), every time
 * the node runs the next run and the owner verifies it.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Address } from "viem";
import type { Policy } from "../attestation/policy.ts";
import type { WriterClient } from "../chain/clients.ts";
import type { PipelineRunOutcome } from "../host/pipeline-run.ts";
import type { PipelineSpec } from "../protocol/pipeline-package.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { listVerifiedEnclaves } from "./enclaves.ts";
import { NoVerifiedEnclaveError } from "./pipeline-errors.ts";
import { createPipeline, verifyPipelineRun, type VerifiedRun } from "./pipelines.ts";

export interface PipelineSession {
  owner: WriterClient;
  store: BlobStore;
  contract: Address;
  registry: Address;
  policy: Policy;
  dataDir: string;
}

export interface SessionRun {
  pipelineId: bigint;
  created: boolean;
  outcome: PipelineRunOutcome;
  verified: VerifiedRun;
}

type Runner = { runPipeline(pipelineId: bigint): Promise<PipelineRunOutcome> };

export async function runPipelineFile(session: PipelineSession, filePath: string, spec: PipelineSpec, node: Runner, onStep: (m: string) => void = () => {}): Promise<SessionRun> {
  const indexPath = join(session.dataDir, "pipelines.json");
  const index = existsSync(indexPath) ? (JSON.parse(await readFile(indexPath, "utf8")) as Record<string, string>) : {};
  const key = `${resolve(filePath)}#${spec.name}`;
  const enclaves = await listVerifiedEnclaves({ reader: session.owner, registry: session.registry, fromBlock: 0n, store: session.store, policy: session.policy });
  if (enclaves.verified.length === 0) throw new NoVerifiedEnclaveError("NO_VERIFIED_ENCLAVE", `no enclave in the registry verifies under the policy (${enclaves.rejected.map((r) => `${r.signer}: ${r.reason}`).join("; ") || "none registered"})`);
  let pipelineId = index[key] === undefined ? undefined : BigInt(index[key]);
  const created = pipelineId === undefined;
  if (pipelineId === undefined) {
    onStep(`verified ${enclaves.verified.length} enclave(s) under the policy; sealing the pipeline's credentials and cursor key to them (HPKE)`);
    const made = await createPipeline({ writer: session.owner, store: session.store, contract: session.contract, spec, candidates: enclaves.verified });
    pipelineId = made.pipelineId;
    index[key] = pipelineId.toString();
    await writeFile(indexPath, JSON.stringify(index, null, 2));
    onStep(`pipeline registered on chain (gas ${made.gasUsed}); package ${made.packageCid}`);
  } else {
    onStep(`pipeline ${pipelineId.toString(16).slice(0, 8)}… already registered here: this run continues from its last anchored cursor`);
  }
  const outcome = await node.runPipeline(pipelineId);
  onStep(`run ${outcome.run} anchored (gas ${outcome.gasUsed}): read ${outcome.read}, wrote ${outcome.written}${outcome.resumed ? " (resumed: an earlier attempt had loaded it)" : ""}`);
  const verified = await verifyPipelineRun({ reader: session.owner, store: session.store, contract: session.contract, pipelineId, runId: outcome.runId, enclaves: enclaves.verified });
  return { pipelineId, created, outcome, verified };
}
