/**
 * Sending many tasks' writes as one batch transaction (submitTasks,
 * acceptTasks, completeTasks) when the market's batch functions are
 * all-or-nothing: one failing item reverts the whole batch with that item's
 * own error, which names its task. That item then fails alone with the error
 * and the others are sent again; a revert that names no task of the batch
 * sends every item on its own, so each gets its own outcome.
 */
import type { ItemOutcome } from "../util/group-commit.ts";
import { decodeContractRevert } from "./contract-error.ts";

export interface TaskBatchSender<I, R> {
  /** The task an item is for (matched against a revert's `taskId` argument). */
  taskIdOf(item: I): bigint;
  /** Sends the items as one transaction; outcomes in item order (a batch may settle some items as failed). */
  sendBatch(items: I[]): Promise<ItemOutcome<R>[]>;
  /** Sends one item as its own transaction. */
  sendOne(item: I): Promise<R>;
}

function settle<R>(run: Promise<R>): Promise<ItemOutcome<R>> {
  return run.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/**
 * One outcome per item, in order. Errors other than reverts (the chain unreachable, say) fail every item
 * still pending, so callers retry them.
 */
export async function sendTaskBatch<I, R>(items: readonly I[], sender: TaskBatchSender<I, R>): Promise<ItemOutcome<R>[]> {
  const outcomes = new Array<ItemOutcome<R> | undefined>(items.length);
  let pending = items.map((item, index) => ({ item, index }));
  while (pending.length > 1) {
    try {
      const results = await sender.sendBatch(pending.map((p) => p.item));
      pending.forEach((p, i) => (outcomes[p.index] = results[i]!));
      pending = [];
    } catch (error) {
      const revert = decodeContractRevert(error);
      if (!revert) {
        for (const p of pending) outcomes[p.index] = { ok: false, error };
        pending = [];
        break;
      }
      const named = revert.args.taskId;
      const culprit = typeof named === "bigint" ? pending.find((p) => sender.taskIdOf(p.item) === named) : undefined;
      if (!culprit) break;
      outcomes[culprit.index] = { ok: false, error: revert };
      pending = pending.filter((p) => p !== culprit);
    }
  }
  const alone = await Promise.all(pending.map((p) => settle(sender.sendOne(p.item))));
  pending.forEach((p, i) => (outcomes[p.index] = alone[i]));
  return outcomes.map((o) => o!);
}
