import assert from "node:assert/strict";
import { test } from "node:test";
import { RecentBlocks } from "../../src/storage/recent-blocks.ts";

const block = (fill: number, length = 100) => new Uint8Array(length).fill(fill);

test("keeps the blocks written last within its budget, dropping the least recently used first", () => {
  const recent = new RecentBlocks(400);
  for (const k of [1, 2, 3, 4]) recent.remember(`b${k}`, block(k));
  assert.deepEqual(recent.recall("b1"), block(1), "b1 is kept and now the most recently used");
  recent.remember("b5", block(5));
  assert.equal(recent.recall("b2"), undefined, "b2, the least recently used, made room for b5");
  for (const k of [1, 3, 4, 5]) assert.deepEqual(recent.recall(`b${k}`), block(k));
});

test("hands out copies and keeps a copy, so no caller can change what others read", () => {
  const recent = new RecentBlocks(1000);
  const written = block(7);
  recent.remember("b", written);
  written[0] = 0;
  const read = recent.recall("b")!;
  read[1] = 0;
  assert.deepEqual(recent.recall("b"), block(7));
});

test("a block larger than a quarter of the budget is not kept, and remembering a key again replaces it", () => {
  const recent = new RecentBlocks(400);
  recent.remember("big", block(1, 101));
  assert.equal(recent.recall("big"), undefined);
  recent.remember("b", block(1));
  recent.remember("b", block(2));
  for (const k of [3, 4, 5]) recent.remember(`b${k}`, block(k));
  assert.deepEqual(recent.recall("b"), block(2), "the replaced entry was counted once, so four 100-byte blocks fit");
});
