/**
 * A NATS JetStream source in a pipeline run: the cursor is the stream
 * sequence, so a second run reads only the messages published since.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
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
