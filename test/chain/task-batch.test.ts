import assert from "node:assert/strict";
import { test } from "node:test";
import { ContractRevertError } from "../../src/chain/contract-error.ts";
import { sendTaskBatch } from "../../src/chain/task-batch.ts";

const revert = (errorName: string, args: Record<string, unknown>) => new ContractRevertError({ errorName, args, functionName: "acceptTasks", cause: undefined });

/** A market stand-in that refuses the tasks in `refused` with `errorOf` and records every call. */
function sender(refused: Map<bigint, ContractRevertError>) {
  const calls: string[] = [];
  return {
    calls,
    taskIdOf: (id: bigint) => id,
    sendBatch: async (ids: bigint[]) => {
      calls.push(`batch ${ids.join(",")}`);
      const bad = ids.find((id) => refused.has(id));
      if (bad !== undefined) throw refused.get(bad)!;
      return ids.map((id) => ({ ok: true as const, value: `ok ${id}` }));
    },
    sendOne: async (id: bigint) => {
      calls.push(`one ${id}`);
      if (refused.has(id)) throw refused.get(id)!;
      return `ok ${id}`;
    },
  };
}

test("a batch the market takes whole is one transaction", async () => {
  const s = sender(new Map());
  const outcomes = await sendTaskBatch([1n, 2n, 3n], s);
  assert.deepEqual(outcomes, [1n, 2n, 3n].map((id) => ({ ok: true, value: `ok ${id}` })));
  assert.deepEqual(s.calls, ["batch 1,2,3"]);
});

test("a revert naming one task fails that task alone and resends the rest as a batch", async () => {
  const taken = revert("TaskNotOpen", { taskId: 2n, status: 2 });
  const s = sender(new Map([[2n, taken]]));
  const outcomes = await sendTaskBatch([1n, 2n, 3n], s);
  assert.deepEqual(outcomes[0], { ok: true, value: "ok 1" });
  assert.deepEqual(outcomes[1], { ok: false, error: taken });
  assert.deepEqual(outcomes[2], { ok: true, value: "ok 3" });
  assert.deepEqual(s.calls, ["batch 1,2,3", "batch 1,3"]);
});

test("a revert that names no task of the batch sends each task on its own", async () => {
  const noOffer = revert("NoOffer", { enclave: "0x01", token: "0x00" });
  const s = sender(new Map([[3n, noOffer]]));
  const outcomes = await sendTaskBatch([1n, 2n, 3n], s);
  assert.deepEqual(outcomes.map((o) => o.ok), [true, true, false]);
  assert.equal((outcomes[2] as { error: unknown }).error, noOffer);
  assert.deepEqual(s.calls, ["batch 1,2,3", "one 1", "one 2", "one 3"]);
});

test("a lone task goes out with the single-task function, and what is not a revert fails every task", async () => {
  const lone = sender(new Map());
  assert.deepEqual(await sendTaskBatch([7n], lone), [{ ok: true, value: "ok 7" }]);
  assert.deepEqual(lone.calls, ["one 7"]);

  const down = new Error("fetch failed: ECONNREFUSED");
  const outcomes = await sendTaskBatch([1n, 2n], { taskIdOf: (id: bigint) => id, sendBatch: async () => { throw down; }, sendOne: async () => "never" });
  assert.deepEqual(outcomes, [{ ok: false, error: down }, { ok: false, error: down }]);
});
