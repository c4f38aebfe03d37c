/**
 * A node's calls to the market, group-committed: the accepts its task
 * handlers ask for while one transaction is in flight go out together as the
 * next acceptTasks transaction, completions likewise as completeTasks, and
 * status reads as one taskWords call. A lone request is sent at once (writes
 * with the single-task function), so an idle node adds no wait; a loaded one
 * pays one request per batch.
 */
import type { Address, Hex } from "viem";
import { acceptTask, type AcceptedTask } from "../chain/actions/accept-task.ts";
import { acceptTasks } from "../chain/actions/accept-tasks.ts";
import { completeTask, type CompleteTaskParams } from "../chain/actions/complete-task.ts";
import { completeTasks } from "../chain/actions/complete-tasks.ts";
import { readTaskDeposit } from "../chain/actions/market-config.ts";
import { readTasks } from "../chain/actions/read-tasks.ts";
import type { TaskRecord } from "../chain/actions/read-task.ts";
import type { TxResult } from "../chain/actions/send-transaction.ts";
import type { WriterClient } from "../chain/clients.ts";
import { decodeContractRevert } from "../chain/contract-error.ts";
import { sendTaskBatch } from "../chain/task-batch.ts";
import type { TaskSpec } from "../protocol/task.ts";
import { groupCommit } from "../util/group-commit.ts";
import { CloisterError } from "../util/base-error.ts";

/**
 * The task was no longer open: acceptTasks skipped it when its transaction was mined, or (no transaction hash)
 * the status read just before the batch was sent found it taken. Another node took it first, or it was cancelled.
 */
export class TaskTakenError extends CloisterError<"TASK_TAKEN"> {
  readonly taskId: bigint;
  constructor(taskId: bigint, transactionHash?: Hex) {
    const when = transactionHash === undefined ? "this node was about to send its accept" : `acceptTasks transaction ${transactionHash} was mined`;
    super("TASK_TAKEN", `task ${taskId} was no longer open when ${when}: another node took it first, or it was cancelled`, {
      details: { taskId: taskId.toString(), ...(transactionHash === undefined ? {} : { transactionHash }) },
    });
    this.taskId = taskId;
  }
}

/** A write that went out in a transaction shared by `batchSize` tasks (gasUsed is the whole transaction's). */
export type Batched<T> = T & { batchSize: number };

export interface NodeMarketBatches {
  /**
   * Accepts the task for this node's enclave. The market's per-task deposit is read once and kept; a batch
   * refused with WrongDeposit (the admin changed it) reads it again and is sent once more.
   */
  accept(task: { taskId: bigint; spec: TaskSpec }): Promise<Batched<AcceptedTask>>;
  complete(params: CompleteTaskParams): Promise<Batched<TxResult>>;
  /** The market's record of the task, as of the latest block. */
  readTask(taskId: bigint): Promise<TaskRecord>;
}

export interface NodeMarketBatchesOptions {
  writer: WriterClient;
  market: Address;
  /** This node's enclave: every accept is for it. */
  enclave: Address;
  /** The most tasks in one transaction (default 32; reads take up to 256). */
  maxBatch?: number;
}

export function nodeMarketBatches({ writer, market, enclave, maxBatch = 32 }: NodeMarketBatchesOptions): NodeMarketBatches {
  type AcceptItem = { taskId: bigint; spec: TaskSpec };
  let knownDeposit: bigint | undefined;
  const accept = groupCommit<AcceptItem, Batched<AcceptedTask>>({
    maxBatch,
    send: async (items) => {
      // Under load a candidate's accepts wait behind its earlier work, and by the time a batch goes out another
      // candidate has often taken some of its tasks. One status read spares sending (and the chain running)
      // accepts that acceptTasks would skip, or that would revert when sent alone (a revert also costs a gas
      // estimate to name it).
      const records = await readTasks(writer, market, items.map((item) => item.taskId));
      const open = items.filter((_, i) => records[i]!.status === "Open");
      const sent = open.length > 0 ? await acceptOpen(open) : [];
      let next = 0;
      return items.map((item, i) => (records[i]!.status === "Open" ? sent[next++]! : { ok: false as const, error: new TaskTakenError(item.taskId) }));
    },
  });
  async function acceptOpen(items: AcceptItem[]) {
    knownDeposit ??= await readTaskDeposit(writer, market);
    const outcomes = await acceptWithDeposit(items, knownDeposit);
    if (!outcomes.some((o) => !o.ok && decodeContractRevert(o.error)?.errorName === "WrongDeposit")) return outcomes;
    knownDeposit = await readTaskDeposit(writer, market);
    return acceptWithDeposit(items, knownDeposit);
  }
  /** The accepts, sent with `deposit` per task (sendTaskBatch: a batch, one by one after a revert). */
  function acceptWithDeposit(items: AcceptItem[], deposit: bigint) {
    return sendTaskBatch(items, {
      taskIdOf: (item) => item.taskId,
      sendOne: async (item) => ({ ...(await acceptTask(writer, market, { ...item, enclave, deposit })), batchSize: 1 }),
      sendBatch: async (batch) => {
        const { accepted, hash, receipt, gasUsed } = await acceptTasks(writer, market, { tasks: batch, enclave, deposit });
        const tx = { hash, receipt, gasUsed };
        const byTask = new Map(accepted.map((a) => [a.taskId, a]));
        return batch.map((item) => {
          const a = byTask.get(item.taskId);
          return a ? { ok: true as const, value: { ...tx, ...a, batchSize: accepted.length } } : { ok: false as const, error: new TaskTakenError(item.taskId, tx.hash) };
        });
      },
    });
  }
  const complete = groupCommit<CompleteTaskParams, Batched<TxResult>>({
    maxBatch,
    send: (items) =>
      sendTaskBatch(items, {
        taskIdOf: (item) => item.taskId,
        sendOne: async (item) => ({ ...(await completeTask(writer, market, item)), batchSize: 1 }),
        sendBatch: async (batch) => {
          const tx = await completeTasks(writer, market, { items: batch });
          return batch.map(() => ({ ok: true as const, value: { ...tx, batchSize: batch.length } }));
        },
      }),
  });
  const readTask = groupCommit<bigint, TaskRecord>({
    maxBatch: 256,
    send: async (taskIds) => (await readTasks(writer, market, taskIds)).map((value) => ({ ok: true as const, value })),
  });
  return { accept, complete, readTask };
}
