import { test } from "node:test";
import assert from "node:assert/strict";
import { zeroAddress, type Address } from "viem";
import { NodeCapacityError, runCapacity, TASK_MEMORY_SHARE } from "../../src/host/capacity.ts";
import { defaultNodeOffer, type NodeOffer } from "../../src/host/node-daemon.ts";

const offer = (memoryMb: number, token: Address = zeroAddress): NodeOffer => ({ ...defaultNodeOffer, token, memoryMb });

test("offers that fit the machine at the configured concurrency keep it", () => {
  const capacity = runCapacity({ offers: [offer(1024)], concurrency: 8, machineMemoryMb: 24_000 });
  assert.deepEqual(capacity, { concurrency: 8 });
});

test("memoryMb × concurrency beyond the machine's memory for tasks lowers the concurrency, and says so", () => {
  // 2 GiB machine: 1536 MB for tasks, one 1024 MB task at a time (the probe: 8 × 1024 MB offered on 2.2 GB).
  const capacity = runCapacity({ offers: [offer(256), offer(1024, "0x0000000000000000000000000000000000000001")], concurrency: 8, machineMemoryMb: 2048 });
  assert.equal(capacity.concurrency, 1);
  assert.match(capacity.note ?? "", /8 tasks at once × 1024 MB offered is 8192 MB, more than the 1536 MB .*2048 MB.*runs at most 1 task at once/);
  assert.equal(Math.floor(2048 * TASK_MEMORY_SHARE), 1536);
});

test("an offer larger than the machine's memory for tasks is refused at startup with a typed error", () => {
  assert.throws(
    () => runCapacity({ offers: [offer(4096)], concurrency: 1, machineMemoryMb: 4096 }),
    (e: unknown) => e instanceof NodeCapacityError && e.code === "NODE_CAPACITY" && /offers tasks 4096 MB.*3072 MB/.test(e.message) && /lower the offer's memoryMb/.test(e.message),
  );
});

test("the machine's memory defaults to the OS's figure", () => {
  assert.equal(runCapacity({ offers: [offer(1)], concurrency: 1 }).concurrency, 1);
});
