/**
 * The network run of a collaboration (docs/cleanroom.md, "Running on a network"): a party assigns the node
 * that runs its side (assignNode), a party requests a run (requestRun), each party's node publishes its
 * peer record for it (joinRun) or reports its enclave's refusal code (reportRefusal); and the events the nodes
 * and the requester follow.
 */
import { parseEventLogs, type Address, type BlockNumber, type Client, type Hex } from "viem";
import { getContractEvents } from "viem/actions";
import { decodeRefusalCode, encodeRefusalCode } from "../../protocol/collab-refusal.ts";
import { collaborationsAbi } from "../abi/Collaborations.ts";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

/** The client's account, a party, names its node's enclave and the IPFS CID of the run kit it sealed to it. */
export function assignNode(client: WriterClient, contract: Address, collaborationId: bigint, enclave: Address, kitCid: string): Promise<TxResult> {
  return writeContractTransaction(client, "assignNode", { address: contract, abi: collaborationsAbi, functionName: "assignNode", args: [collaborationId, enclave, kitCid] });
}

/** The client's account, a party, requests the next run; returns its run id. */
export async function requestRun(client: WriterClient, contract: Address, collaborationId: bigint): Promise<TxResult & { runId: number; blockHash: Hex }> {
  const tx = await writeContractTransaction(client, "requestRun", { address: contract, abi: collaborationsAbi, functionName: "requestRun", args: [collaborationId] });
  const [event] = parseEventLogs({ abi: collaborationsAbi, logs: tx.receipt.logs, eventName: "RunRequested" });
  if (!event) throw new RangeError(`requestRun transaction ${tx.hash} emitted no RunRequested event; is ${contract} a Collaborations contract?`);
  return { ...tx, runId: event.args.runId, blockHash: tx.receipt.blockHash };
}

/** The operator of party `party`'s node publishes its peer record (an IPFS CID) for run `runId`. */
export function joinRun(client: WriterClient, contract: Address, collaborationId: bigint, runId: number, party: number, peerCid: string): Promise<TxResult> {
  return writeContractTransaction(client, "joinRun", { address: contract, abi: collaborationsAbi, functionName: "joinRun", args: [collaborationId, runId, party, peerCid] });
}

/** The operator of party `party`'s node reports its enclave's typed refusal code (only the code) for run `runId`. */
export function reportRefusal(client: WriterClient, contract: Address, collaborationId: bigint, runId: number, party: number, code: string): Promise<TxResult> {
  return writeContractTransaction(client, "reportRefusal", { address: contract, abi: collaborationsAbi, functionName: "reportRefusal", args: [collaborationId, runId, party, encodeRefusalCode(code)] });
}

export interface NodeAssignment {
  collaborationId: bigint;
  party: number;
  enclave: Address;
  kitCid: string;
  blockNumber: bigint;
}

export interface RunRequest {
  collaborationId: bigint;
  runId: number;
  requester: Address;
  blockNumber: bigint;
  /** The hash of the block that holds the request: the nodes' attestation freshness for the run. */
  blockHash: Hex;
}

export interface RunJoin {
  collaborationId: bigint;
  runId: number;
  party: number;
  enclave: Address;
  peerCid: string;
  blockNumber: bigint;
}

export interface RunRefusal {
  collaborationId: bigint;
  runId: number;
  party: number;
  enclave: Address;
  /** The enclave's typed refusal code (the contract accepts only A-Z, 0-9 and _). */
  code: string;
  blockNumber: bigint;
}

export interface RunEvents {
  assignments: NodeAssignment[];
  requests: RunRequest[];
  joins: RunJoin[];
  refusals: RunRefusal[];
}

/** The clean-room run events in [fromBlock, toBlock], of one collaboration or of all: one log query for the four kinds. */
export async function readRunEvents(client: Client, contract: Address, range: { fromBlock: BlockNumber; toBlock: BlockNumber | "latest"; collaborationId?: bigint }): Promise<RunEvents> {
  const logs = await getContractEvents(client, { address: contract, abi: collaborationsAbi, fromBlock: range.fromBlock, toBlock: range.toBlock, strict: true });
  const out: RunEvents = { assignments: [], requests: [], joins: [], refusals: [] };
  for (const e of logs) {
    if (range.collaborationId !== undefined && "collaborationId" in e.args && e.args.collaborationId !== range.collaborationId) continue;
    if (e.eventName === "PartyNodeAssigned") out.assignments.push({ ...e.args, blockNumber: e.blockNumber });
    else if (e.eventName === "RunRequested") out.requests.push({ ...e.args, blockNumber: e.blockNumber, blockHash: e.blockHash });
    else if (e.eventName === "RunJoined") out.joins.push({ ...e.args, blockNumber: e.blockNumber });
    else if (e.eventName === "RunRefused") out.refusals.push({ ...e.args, code: decodeRefusalCode(e.args.code) ?? "UNREADABLE_CODE", blockNumber: e.blockNumber });
  }
  return out;
}
