import type { Address, BlockNumber, Client, Hex } from "viem";
import { getContractEvents, readContract } from "viem/actions";
import type { RunAnchor } from "../../protocol/pipelines.ts";
import { pipelinesAbi } from "../abi/Pipelines.ts";

/** What the contract stores of a pipeline; candidates and schedule are in its events. */
export interface PipelineState {
  pipelineId: bigint;
  /** False when no pipeline has this id. */
  exists: boolean;
  owner: Address;
  runs: number;
  retired: boolean;
  /** How many runs the owner requested outside the schedule (requestRun). */
  requests: number;
  pipelineDigest: Hex;
  /** The cursorAfter of the last anchored run (zero before the first): the next run's cursorBefore. */
  cursor: Hex;
}

export async function readPipeline(client: Client, contract: Address, pipelineId: bigint): Promise<PipelineState> {
  const [owner, runs, retired, requests, pipelineDigest, cursor] = await readContract(client, { address: contract, abi: pipelinesAbi, functionName: "pipelines", args: [pipelineId] });
  return { pipelineId, exists: owner !== "0x0000000000000000000000000000000000000000", owner, runs, retired, requests, pipelineDigest, cursor };
}

/** The schedule a pipeline was registered with and its candidates now (registration order, each added one last). */
export async function readPipelineCandidates(client: Client, contract: Address, pipelineId: bigint): Promise<{ schedule: string | undefined; candidates: Address[] }> {
  const [registered] = await getContractEvents(client, { address: contract, abi: pipelinesAbi, eventName: "PipelineRegistered", args: { pipelineId }, fromBlock: 0n, strict: true });
  let candidates = [...(registered?.args.candidates ?? [])];
  for (const e of await getContractEvents(client, { address: contract, abi: pipelinesAbi, eventName: "CandidateSet", args: { pipelineId }, fromBlock: 0n, strict: true })) {
    candidates = candidates.filter((c) => c.toLowerCase() !== e.args.enclave.toLowerCase());
    if (e.args.allowed) candidates.push(e.args.enclave);
  }
  return { schedule: registered?.args.schedule, candidates };
}

export interface AnchoredRun extends RunAnchor {
  /** 1 for the first run, then one more per anchored run. */
  run: number;
  enclave: Address;
  blockNumber: bigint;
  transactionHash: Hex;
}

/** The runs anchored for `pipelineId`, in run order, from its RunAnchored events. */
export async function readPipelineRuns(client: Client, contract: Address, pipelineId: bigint, fromBlock: BlockNumber = 0n): Promise<AnchoredRun[]> {
  const logs = await getContractEvents(client, { address: contract, abi: pipelinesAbi, eventName: "RunAnchored", args: { pipelineId }, fromBlock, toBlock: "latest", strict: true });
  return logs
    .map(({ args, blockNumber, transactionHash }) => {
      const { pipelineId: _id, ...run } = args;
      return { ...run, blockNumber, transactionHash };
    })
    .sort((a, b) => a.run - b.run);
}
