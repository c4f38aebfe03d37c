import assert from "node:assert/strict";
import { test } from "node:test";
import type { HostEvent } from "../../src/host/log.ts";
import { Counter, Histogram, Registry } from "prom-client";
import { meteredLog, NodeMetrics } from "../../src/host/metrics.ts";
import { parsePrometheusText } from "./prometheus-parse.ts";

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test("counts task events and renders valid exposition text", async () => {
  const time = clock();
  const metrics = new NodeMetrics(time.now);
  const emitted: HostEvent[] = [];
  const log = meteredLog({ emit: (e) => emitted.push(e) }, metrics);

  log.emit({ type: "enclave-ready", signer: "0x1", measurement: "m", simulated: true, teeType: "sim" });
  for (const id of ["1", "2", "3", "4", "5"]) log.emit({ type: "task-seen", taskId: id });
  log.emit({ type: "task-seen", taskId: "1" }); // seen again when its range is crawled again
  log.emit({ type: "task-accepted", taskId: "1", transactionHash: "0xa", gasUsed: "1", batchSize: 1 });
  log.emit({ type: "task-accepted", taskId: "2", transactionHash: "0xb", gasUsed: "1", batchSize: 1 });
  time.advance(300);
  log.emit({ type: "task-completed", taskId: "1", transactionHash: "0xc", gasUsed: "1", batchSize: 1 });
  time.advance(2_000);
  log.emit({ type: "task-failed", taskId: "2", code: "INPUT_DECRYPTION_FAILED", message: "bad tag" });
  log.emit({ type: "task-failed", taskId: "-", code: "WATCHER", message: "crawler error, not a task" });
  log.emit({ type: "task-skipped", taskId: "3", reason: "taken" });
  log.emit({ type: "task-refused", taskId: "4", reason: "KEY_UNWRAP_FAILED", code: "KEY_UNWRAP_FAILED", message: "garbage key", transactionHash: "0xd", gasUsed: "1" });
  metrics.checkpointBlock.set(42);
  metrics.rpcErrors.inc();

  assert.equal(emitted.length, 14, "every event still reaches the underlying log");
  const parsed = parsePrometheusText(await metrics.render());
  assert.equal(parsed.value("tasks_seen_total"), 5);
  assert.equal(parsed.value("tasks_accepted_total"), 2);
  assert.equal(parsed.value("tasks_completed_total"), 1);
  assert.equal(parsed.value("tasks_failed_total", { code: "INPUT_DECRYPTION_FAILED" }), 1);
  assert.equal(parsed.value("tasks_failed_total", { code: "KEY_UNWRAP_FAILED" }), 1, "a refused task failed with its enclave's code");
  assert.equal(parsed.value("tasks_failed_total", { code: "WATCHER" }), undefined);
  assert.equal(parsed.value("tasks_in_flight"), 1, "only task 5 is still in flight");
  assert.equal(parsed.value("chain_block_checkpoint"), 42);
  assert.equal(parsed.value("rpc_errors_total"), 1);
  assert.equal(parsed.value("enclave_up"), 1);
  assert.equal(parsed.value("task_duration_seconds_count"), 1);
  assert.equal(parsed.value("task_duration_seconds_sum"), 0.3);
  assert.equal(parsed.value("task_duration_seconds_bucket", { le: "0.25" }), 0);
  assert.equal(parsed.value("task_duration_seconds_bucket", { le: "0.5" }), 1);
  assert.equal(parsed.value("task_duration_seconds_bucket", { le: "+Inf" }), 1);
  for (const name of ["tasks_seen_total", "tasks_failed_total", "rpc_errors_total"]) assert.equal(parsed.types.get(name), "counter");
  for (const name of ["tasks_in_flight", "chain_block_checkpoint", "enclave_up"]) assert.equal(parsed.types.get(name), "gauge");
  assert.equal(parsed.types.get("task_duration_seconds"), "histogram");
  assert.ok(parsed.help.get("tasks_seen_total")!.length > 0);
});

test("a fresh node shows zeroed counters and no failure series", async () => {
  const parsed = parsePrometheusText(await new NodeMetrics().render());
  assert.equal(parsed.value("tasks_seen_total"), 0);
  assert.equal(parsed.samples.filter((s) => s.name === "tasks_failed_total").length, 0);
  assert.equal(parsed.value("task_duration_seconds_count"), 0);
  assert.equal(parsed.value("enclave_up"), 0);
  assert.equal(parsed.types.get("registration_state"), "gauge");
  assert.equal(parsed.value("registration_state", { state: "attesting" }), 1);
  for (const state of ["registered", "renewing", "expired", "revoked"]) assert.equal(parsed.value("registration_state", { state }), 0);
});

test("the registration state set moves its 1 to the current state; two nodes in one process keep their own metrics", async () => {
  const a = new NodeMetrics();
  const b = new NodeMetrics();
  a.setRegistrationState("registered");
  a.tasksSeen.inc();
  const parsedA = parsePrometheusText(await a.render());
  assert.equal(parsedA.value("registration_state", { state: "registered" }), 1);
  assert.equal(parsedA.value("registration_state", { state: "attesting" }), 0);
  assert.equal(parsedA.value("tasks_seen_total"), 1);
  const parsedB = parsePrometheusText(await b.render());
  assert.equal(parsedB.value("tasks_seen_total"), 0);
  assert.equal(parsedB.value("registration_state", { state: "attesting" }), 1);
});

test("label values are escaped and histogram buckets are cumulative", async () => {
  const registry = new Registry();
  const counter = new Counter({ name: "odd_total", help: "help with a \\ backslash\nand a newline", labelNames: ["code"], registers: [registry] });
  counter.inc({ code: 'say "hi"\\now\nthen' }, 2);
  const histogram = new Histogram({ name: "h_seconds", help: "h", buckets: [1, 2], registers: [registry] });
  for (const v of [0.5, 1.5, 1.5, 3]) histogram.observe(v);
  const parsed = parsePrometheusText(await registry.metrics());
  assert.equal(parsed.value("odd_total", { code: 'say "hi"\\now\nthen' }), 2);
  assert.equal(parsed.help.get("odd_total"), "help with a \\\\ backslash\\nand a newline");
  assert.deepEqual(
    parsed.samples.filter((s) => s.name === "h_seconds_bucket").map((s) => [s.labels.le, s.value]),
    [["1", 1], ["2", 3], ["+Inf", 4]],
  );
  assert.equal(parsed.value("h_seconds_sum"), 6.5);
});

test("the node's counters refuse to go down", () => {
  assert.throws(() => new NodeMetrics().tasksSeen.inc(-1), /not possible to decrease a counter/);
});
