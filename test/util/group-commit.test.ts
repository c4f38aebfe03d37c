import assert from "node:assert/strict";
import { test } from "node:test";
import { groupCommit, type ItemOutcome } from "../../src/util/group-commit.ts";

/** A send whose batches finish only when the test says so. */
function controlledSend() {
  const batches: { items: number[]; finish: (outcomes?: ItemOutcome<string>[]) => void; fail: (e: Error) => void }[] = [];
  const send = (items: number[]) =>
    new Promise<ItemOutcome<string>[]>((resolve, reject) => {
      batches.push({
        items,
        finish: (outcomes) => resolve(outcomes ?? items.map((i) => ({ ok: true, value: `r${i}` }))),
        fail: reject,
      });
    });
  return { batches, send };
}

const tick = () => new Promise((r) => setImmediate(r));

test("a lone item goes out at once; items handed in while it is in flight go out together next", async () => {
  const { batches, send } = controlledSend();
  const add = groupCommit({ send });
  const first = add(1);
  assert.deepEqual(batches.map((b) => b.items), [[1]], "sent before add returns");
  const rest = [add(2), add(3), add(4)];
  await tick();
  assert.equal(batches.length, 1, "nothing else is sent while the first batch is in flight");
  batches[0]!.finish();
  assert.equal(await first, "r1");
  await tick();
  assert.deepEqual(batches.map((b) => b.items), [[1], [2, 3, 4]]);
  batches[1]!.finish();
  assert.deepEqual(await Promise.all(rest), ["r2", "r3", "r4"]);
});

test("maxBatch and maxWeight split a long queue; an item heavier than maxWeight goes alone", async () => {
  const { batches, send } = controlledSend();
  const add = groupCommit({ send, maxBatch: 2, maxWeight: 10, weigh: (i: number) => (i === 4 ? 50 : 1) });
  const all = [1, 2, 3, 4, 5, 6].map((i) => add(i));
  for (let i = 0; i < 4; i++) {
    await tick();
    batches[i]!.finish();
  }
  assert.deepEqual(await Promise.all(all), ["r1", "r2", "r3", "r4", "r5", "r6"]);
  assert.deepEqual(batches.map((b) => b.items), [[1], [2, 3], [4], [5, 6]]);
});

test("each item gets its own outcome; a failed send fails every item of its batch only", async () => {
  const { batches, send } = controlledSend();
  const add = groupCommit({ send, concurrency: 2 });
  const items = [add(0), add(1), add(2), add(3)];
  assert.deepEqual(batches.map((x) => x.items), [[0], [1]], "two batches in flight with concurrency 2");
  batches[0]!.finish();
  await tick();
  assert.deepEqual(batches.map((x) => x.items), [[0], [1], [2, 3]]);
  batches[1]!.fail(new Error("the chain is unreachable"));
  batches[2]!.finish([{ ok: true, value: "two" }, { ok: false, error: new Error("three was refused") }]);
  assert.equal(await items[0], "r0");
  await assert.rejects(items[1]!, /the chain is unreachable/);
  assert.equal(await items[2], "two");
  await assert.rejects(items[3]!, /three was refused/);
});

test("a send that returns the wrong number of outcomes fails its items instead of leaving them waiting", async () => {
  const add = groupCommit<number, string>({ send: async () => [] });
  await assert.rejects(add(1), /a batch of 1 items came back with 0 outcomes/);
});

test("idle resolves once every item handed in has its outcome", async () => {
  const { batches, send } = controlledSend();
  const add = groupCommit({ send });
  await add.idle();
  const items = [add(1), add(2)];
  let idle = false;
  const waiting = add.idle().then(() => (idle = true));
  batches[0]!.finish();
  await tick();
  assert.equal(idle, false, "item 2 is still in flight");
  batches[1]!.finish();
  await waiting;
  assert.deepEqual(await Promise.all(items), ["r1", "r2"]);
});

test("bad options are refused", () => {
  assert.throws(() => groupCommit({ send: async () => [], maxBatch: 0 }), /maxBatch must be a positive integer/);
  assert.throws(() => groupCommit({ send: async () => [], concurrency: 1.5 }), /concurrency must be a positive integer/);
});
