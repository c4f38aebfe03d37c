/** Tasks as the market's events and task words tell them: state, attempts, deadlines, gas and latency. */
import type { Address, Hex, TransactionReceipt } from "viem";
import { readContract } from "viem/actions";
import { taskMarketAbi } from "../../../src/chain/abi/TaskMarket.ts";
import { decodeTaskWord, type TaskRecord } from "../../../src/chain/actions/read-task.ts";
import { refusalReasonName } from "../../../src/protocol/refusal.ts";
import type { App } from "../app.ts";
import type { ChainEvent } from "./events.ts";

export interface TaskSpecArgs {
  requester: Address;
  token: Address;
  maxPrice: bigint;
  programDigest: Hex;
  inputDigest: Hex;
  envelopeCid: string;
  candidates: readonly Address[];
  cpuMillis: number;
  memoryMb: number;
  duration: number;
  teeTypes: number;
  category: number;
  deadlineMultiple: number;
  maxAttempts: number;
}

export interface TaskView {
  taskId: bigint;
  spec?: TaskSpecArgs;
  events: ChainEvent<Record<string, unknown>>[];
  attempts: { attempt: number; enclave: Address; operator: Address; price: bigint; deposit: bigint; deadline: bigint; outcome: string }[];
  completed?: { enclave: Address; outputCid: string; provenanceCid: string; provenanceDigest: Hex; outputDigest: Hex; price: bigint; blockNumber: bigint; tx: Hex };
  record?: TaskRecord;
  submittedBlock?: bigint;
}

/** Every task the market has seen, newest submission first, with its current word from the chain. */
export async function loadTasks(app: App): Promise<TaskView[]> {
  const market = (await app.events("market"))!;
  const byId = new Map<bigint, TaskView>();
  const view = (id: bigint) => {
    let t = byId.get(id);
    if (!t) byId.set(id, (t = { taskId: id, events: [], attempts: [] }));
    return t;
  };
  for (const e of market.all()) {
    const a = e.args as Record<string, unknown>;
    if (typeof a.taskId !== "bigint") continue;
    const t = view(a.taskId);
    t.events.push(e);
    switch (e.eventName) {
      case "TaskSubmitted":
        t.spec = a.spec as TaskSpecArgs;
        t.submittedBlock = e.blockNumber;
        break;
      case "TaskAccepted":
        t.attempts.push({ attempt: Number(a.attempt), enclave: a.enclave as Address, operator: a.operator as Address, price: a.price as bigint, deposit: a.deposit as bigint, deadline: BigInt(a.deadline as number | bigint), outcome: "running" });
        break;
      case "TaskCompleted": {
        const last = t.attempts.at(-1);
        if (last) last.outcome = "completed";
        t.completed = { enclave: a.enclave as Address, outputCid: a.outputCid as string, provenanceCid: a.provenanceCid as string, provenanceDigest: a.provenanceDigest as Hex, outputDigest: a.outputDigest as Hex, price: a.price as bigint, blockNumber: e.blockNumber, tx: e.transactionHash };
        break;
      }
      case "TaskRefused": {
        const last = t.attempts.find((x) => x.attempt === Number(a.attempt)) ?? t.attempts.at(-1);
        if (last) last.outcome = `refused (${refusalReasonName(Number(a.reason)) ?? `reason ${a.reason}`})`;
        break;
      }
      case "TaskReopened": {
        const last = t.attempts.at(-1);
        if (last && last.outcome === "running") last.outcome = "deadline missed, reopened";
        break;
      }
      default:
        break;
    }
  }
  // Newest first by the first event (task ids are hashes, not counters).
  const order = (t: TaskView) => t.events[0]!.blockNumber * 1_000_000n + BigInt(t.events[0]!.logIndex);
  const tasks = [...byId.values()].sort((x, y) => (order(x) < order(y) ? 1 : order(x) > order(y) ? -1 : 0));
  for (let i = 0; i < tasks.length; i += 200) {
    const chunk = tasks.slice(i, i + 200);
    const words = await readContract(app.client, { address: app.deployment.market, abi: taskMarketAbi, functionName: "taskWords", args: [chunk.map((t) => t.taskId)] });
    chunk.forEach((t, j) => (t.record = decodeTaskWord(t.taskId, words[j]!)));
  }
  return tasks;
}

const receipts = new Map<Hex, Promise<TransactionReceipt>>();

export function receiptOf(app: App, hash: Hex): Promise<TransactionReceipt> {
  let r = receipts.get(hash);
  if (!r) {
    r = app.client.getTransactionReceipt({ hash });
    r.catch(() => receipts.delete(hash));
    receipts.set(hash, r);
  }
  return r;
}

/** Seconds from submission to completion, by block times; undefined while not completed. */
export async function latencyOf(app: App, t: TaskView): Promise<{ submittedAt: number; completedAt: number; seconds: number } | undefined> {
  if (!t.completed || t.submittedBlock === undefined) return undefined;
  const [submittedAt, completedAt] = await Promise.all([app.times.of(t.submittedBlock), app.times.of(t.completed.blockNumber)]);
  return { submittedAt, completedAt, seconds: completedAt - submittedAt };
}

export function taskLabel(id: bigint): string {
  return id < 1n << 64n ? id.toString() : `0x${id.toString(16)}`;
}
