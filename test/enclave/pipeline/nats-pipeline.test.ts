/**
 * NATS JetStream in pipeline runs: as a source the cursor is the stream
 * sequence, so a second run reads only the messages published since; as a
 * destination a run is published once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { collect, openDataset } from "../../../src/enclave/connectors/index.ts";
import { runPipeline } from "../../../src/enclave/pipeline/run-pipeline.ts";
import type { PipelineSpec } from "../../../src/protocol/pipeline-package.ts";
import { natsUrl, uniqueName, unreachable } from "../connectors/servers.ts";

const { hostname, port } = new URL(natsUrl);
const down = await unreachable(hostname, Number(port || 4222));
const skip = down ? `NATS unreachable: ${down}` : false;
const stream = uniqueName("CLOISTER_PL").toUpperCase();
const dir = mkdtempSync(join(tmpdir(), "cloister-pl-nats-"));
let nc: NatsConnection | undefined;

test.after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (!nc) return;
  await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
  await nc.close();
});

test("nats → SQL → csv: the second run reads only the new messages", { skip }, async () => {
  nc = await connect({ servers: `${hostname}:${port || 4222}` });
  await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  const publish = (i: number) => nc!.jetstream().publish(`${stream.toLowerCase()}.e`, new TextEncoder().encode(JSON.stringify({ id: i, kind: i % 2 === 0 ? "even" : "odd" })));
  for (let i = 1; i <= 5; i++) await publish(i);
  const spec: PipelineSpec = {
    name: "nats",
    source: { type: "nats", url: natsUrl, stream },
    transform: { kind: "sql", sql: "SELECT CAST(id AS BIGINT) AS id, upper(kind) AS kind FROM source" },
    destination: { type: "csv", path: join(dir, "events.csv"), mode: "append" },
    schedule: null,
  };
  let sealed: string | null = null;
  const first = await runPipeline(spec, { after: undefined, runId: "0xn1", sealCursor: (c) => new TextEncoder().encode((sealed = c) ?? "") });
  assert.deepEqual([first.record.read, first.record.written, sealed], [5, 5, "5"]);
  for (let i = 6; i <= 7; i++) await publish(i);
  const second = await runPipeline(spec, { after: sealed ?? undefined, runId: "0xn2", sealCursor: (c) => new TextEncoder().encode((sealed = c) ?? "") });
  assert.deepEqual([second.record.read, second.record.written, sealed], [2, 2, "7"]);
  assert.deepEqual(readFileSync(join(dir, "events.csv"), "utf8").trim().split("\n").slice(1), ["1,ODD", "2,EVEN", "3,ODD", "4,EVEN", "5,ODD", "6,EVEN", "7,ODD"]);
});

test("csv → SQL → nats: the run's rows are published once, and the same run loaded again resumes from the bucket's marker", { skip }, async () => {
  nc ??= await connect({ servers: `${hostname}:${port || 4222}` });
  const out = `${stream}_OUT`;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: out, subjects: [`${out.toLowerCase()}.>`] });
  try {
    writeFileSync(join(dir, "orders.csv"), "id,customer,amount\n1,ada,10\n2,bob,5\n3,ada,7\n");
    const spec: PipelineSpec = {
      name: "to-nats",
      source: { type: "csv", path: join(dir, "orders.csv"), cursor: "id" },
      transform: { kind: "sql", sql: "SELECT customer, SUM(amount) AS total FROM source GROUP BY customer ORDER BY customer" },
      destination: { type: "nats", url: natsUrl, stream: out, subject: `${out.toLowerCase()}.totals` },
      schedule: null,
    };
    const seal = (c: string | null) => new TextEncoder().encode(c ?? "");
    // A run id of its own: the marker bucket (cloister_pipeline_runs) outlives this test on the machine's server.
    const runId = uniqueName("0xto_nats");
    const first = await runPipeline(spec, { after: undefined, runId, sealCursor: seal });
    assert.deepEqual([first.record.read, first.record.written, first.resumed], [3, 2, false]);
    const again = await runPipeline(spec, { after: undefined, runId, sealCursor: seal });
    assert.deepEqual([again.record.written, again.resumed], [2, true]);
    const published = await collect(await openDataset({ type: "nats", url: natsUrl, stream: out }));
    assert.deepEqual(published.rows, [["ada", 17], ["bob", 5]]);
  } finally {
    await jsm.streams.delete(out).catch(() => undefined);
  }
});
