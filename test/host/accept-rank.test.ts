import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeAbiParameters, keccak256, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { acceptRank } from "../../src/host/task-handler.ts";

const candidates: Address[] = Array.from({ length: 3 }, () => privateKeyToAccount(generatePrivateKey()).address);

test("candidates of a task get distinct turns 0..n-1, whatever the case of the addresses", () => {
  for (const taskId of [1n, 2n, 3n, 2n ** 200n]) {
    const ranks = candidates.map((c) => acceptRank(taskId, candidates, c));
    assert.deepEqual([...ranks].sort(), [0, 1, 2]);
    assert.deepEqual(candidates.map((c) => acceptRank(taskId, candidates.map((x) => x.toLowerCase() as Address), c)), ranks);
  }
});

test("the first turn moves between candidates from task to task", () => {
  const firsts = new Set<Address>();
  for (let taskId = 0n; taskId < 40n; taskId++) firsts.add(candidates.find((c) => acceptRank(taskId, candidates, c) === 0)!);
  assert.equal(firsts.size, 3);
});

test("open matching (no candidates): every node may accept at once", () => {
  assert.equal(acceptRank(7n, [], candidates[0]!), 0);
});

test("ranks follow keccak256(abi.encode(taskId, enclave)), lowest first, as docs/protocol.md states", () => {
  const reference = (taskId: bigint, enclave: Address) => keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "address" }], [taskId, enclave]));
  for (const taskId of [0n, 5n, 2n ** 255n + 12345n]) {
    const ordered = [...candidates].sort((x, y) => (reference(taskId, x) < reference(taskId, y) ? -1 : 1));
    assert.deepEqual(ordered.map((c) => acceptRank(taskId, candidates, c)), [0, 1, 2]);
  }
});
