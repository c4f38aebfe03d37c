import { parseEventLogs, toHex, type Address, type Hex } from "viem";
import { pipelinesAbi } from "../abi/Pipelines.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export interface PipelineRegistration {
  /** Digest of the pipeline file (the enclaves run only the pipeline with this digest). */
  pipelineDigest: Hex;
  /** Enclaves (registry addresses) that may run and anchor it. */
  candidates: Address[];
  /** Cron expression, emitted for the nodes that schedule runs. */
  schedule: string;
}

/** The client's account registers a pipeline it owns; the id equals pipelineId(chainId, contract, owner, salt). */
export async function registerPipeline(
  client: WriterClient,
  contract: Address,
  registration: PipelineRegistration,
  salt: Hex = toHex(crypto.getRandomValues(new Uint8Array(32))),
): Promise<TxResult & { pipelineId: bigint; salt: Hex }> {
  const { pipelineDigest, candidates, schedule } = registration;
  const tx = await writeContractTransaction(client, "registerPipeline", {
    address: contract,
    abi: pipelinesAbi,
    functionName: "registerPipeline",
    args: [pipelineDigest, candidates, schedule, salt],
  });
  const [event] = parseEventLogs({ abi: pipelinesAbi, logs: tx.receipt.logs, eventName: "PipelineRegistered" });
  if (!event) throw new RangeError(`registerPipeline transaction ${tx.hash} emitted no PipelineRegistered event; is ${contract} a Pipelines contract?`);
  return { ...tx, pipelineId: event.args.pipelineId, salt };
}

/** The owner adds (`allowed`) or removes a candidate enclave. */
export function setPipelineCandidate(client: WriterClient, contract: Address, pipelineId: bigint, enclave: Address, allowed: boolean): Promise<TxResult> {
  return writeContractTransaction(client, "setCandidate", { address: contract, abi: pipelinesAbi, functionName: "setCandidate", args: [pipelineId, enclave, allowed] });
}

/** The owner retires a pipeline: no further run is anchored. */
export function retirePipeline(client: WriterClient, contract: Address, pipelineId: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "retirePipeline", { address: contract, abi: pipelinesAbi, functionName: "retirePipeline", args: [pipelineId] });
}

/** The owner asks the candidates to run the pipeline now; `request` is its number, `logIndex` orders it among the block's events. */
export async function requestPipelineRun(client: WriterClient, contract: Address, pipelineId: bigint): Promise<TxResult & { request: number; blockNumber: bigint; logIndex: number }> {
  const tx = await writeContractTransaction(client, "requestRun", { address: contract, abi: pipelinesAbi, functionName: "requestRun", args: [pipelineId] });
  const [event] = parseEventLogs({ abi: pipelinesAbi, logs: tx.receipt.logs, eventName: "RunRequested" });
  if (!event) throw new RangeError(`requestRun transaction ${tx.hash} emitted no RunRequested event; is ${contract} a Pipelines contract?`);
  return { ...tx, request: event.args.request, blockNumber: event.blockNumber, logIndex: event.logIndex };
}
