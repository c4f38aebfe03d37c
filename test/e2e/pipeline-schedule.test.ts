/**
 * Scheduling and failover in process: two candidate nodes run a pipeline on
 * a schedule of `@every 2s`, taking slots in turn; one node's enclave dies,
 * and the other takes its slots over after the deadline. Every run is
 * anchored once and the destination holds each row once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { readPipelineRuns } from "../../src/chain/actions/read-pipeline.ts";
import { startEmbeddedNetwork } from "../../src/devnet/embedded.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { createCsvCopyPipeline } from "./pipeline-fixture.ts";

async function until<T>(what: string, probe: () => Promise<T | undefined>, attempts = 600): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`gave up waiting for ${what}`);
}

test("scheduled runs alternate between candidates; when one enclave dies the other takes its slots after the deadline", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-pl-sched-"));
  const events: { node: number; event: HostEvent }[] = [];
  const network = await startEmbeddedNetwork({ nodes: 2, pipelines: { pollIntervalMs: 200, failoverAfterMs: 1000 }, onHostEvent: (node, event) => events.push({ node, event }) });
  try {
    await writeFile(join(dir, "in.csv"), "id,v\n1,a\n2,b\n");
    const { pipelineId, contract } = await createCsvCopyPipeline(network, dir, "sched", "@every 2s");
    const anchoredBy = (node: number) => events.filter((e) => e.node === node && e.event.type === "pipeline-anchored").length;
    await until("both nodes to anchor a scheduled run", async () => (anchoredBy(0) > 0 && anchoredBy(1) > 0 ? true : undefined));

    await network.enclaves[0]!.close();
    const closedAt = Date.now() / 1000;
    const eventsBeforeClose = events.length;
    const before = (await readPipelineRuns(network.requester, contract, pipelineId)).length;
    await appendFile(join(dir, "in.csv"), "3,c\n4,d\n");
    // Under load node 1 may also fail over a slot node 0 served just before its enclave closed: only a slot that began after the close shows the takeover.
    await until("node 1 to take over a slot of node 0's that began after its enclave closed", async () => (events.some((e) => e.node === 1 && e.event.type === "pipeline-started" && e.event.failover && e.event.slot >= closedAt) ? true : undefined));
    await until("node 0 to try its slot and fail", async () => (events.slice(eventsBeforeClose).some((e) => e.node === 0 && e.event.type === "pipeline-failed") ? true : undefined));
    await until("two more anchored runs", async () => ((await readPipelineRuns(network.requester, contract, pipelineId)).length >= before + 2 ? true : undefined));

    const runs = await readPipelineRuns(network.requester, contract, pipelineId);
    assert.deepEqual(runs.map((r) => r.run), runs.map((_, i) => i + 1), "runs numbered 1…n: each anchored once");
    assert.equal(new Set(runs.map((r) => r.runId)).size, runs.length);
    for (let i = 1; i < runs.length; i++) assert.equal(runs[i]!.cursorBefore, runs[i - 1]!.cursorAfter, "one cursor chain");
    assert.ok(runs.slice(before).every((r) => r.enclave === network.nodes[1]!.signer), "after node 0's enclave died, node 1 anchored every run");
    assert.equal(runs.reduce((n, r) => n + Number(r.recordsRead), 0), 4, "4 source rows read over all runs");
    const lines = (await readFile(join(dir, "out.csv"), "utf8")).trim().split("\n").slice(1);
    assert.deepEqual(lines.sort(), ["1,a", "2,b", "3,c", "4,d"], "each row once");
  } finally {
    await network.close();
    await rm(dir, { recursive: true, force: true });
  }
});
