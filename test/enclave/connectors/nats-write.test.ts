/**
 * The NATS JetStream destination against the machine's nats-server: rows go
 * out as JSON messages that read back through the NATS source; a run is
 * published once, whether it is loaded again later or by two writers at
 * once; a mode other than append and a subject no stream captures are
 * refused with what to fix.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "nats";
import { collect, datasetDigest } from "../../../src/enclave/connectors/index.ts";
import { parseNatsDestination } from "../../../src/enclave/connectors/descriptor.ts";
import { writeNatsRows } from "../../../src/enclave/connectors/nats-write.ts";
import { openDataset } from "../../../src/enclave/connectors/index.ts";
import type { Column, Row } from "../../../src/enclave/connectors/types.ts";
import { natsUrl, uniqueName, unreachable } from "./servers.ts";

const { hostname, port } = new URL(natsUrl);
const down = await unreachable(hostname, Number(port || 4222));
const skip = down ? `NATS unreachable: ${down}; start nats-server -js to run these tests` : false;
const stream = uniqueName("CLOISTER_OUT").toUpperCase();
const subject = `${stream.toLowerCase()}.totals`;
const bucket = uniqueName("cloister_runs");
const columns: Column[] = [{ name: "customer", type: "text" }, { name: "orders", type: "integer" }, { name: "total", type: "float" }, { name: "meta", type: "json" }];
const rows: Row[] = [["ada", 3n, 31.5, '{"tier":"gold"}'], ["bob", 1n, 2.25, null], ["cy", 12n, 0, "[]"]];
const marker = (runId: string) => ({ table: bucket, runId, record: (w: { rowCount: number; digest: string }) => JSON.stringify({ written: w.rowCount, digest: w.digest }) });
async function* once(batch: readonly Row[]): AsyncGenerator<readonly Row[]> {
  yield batch;
}

let nc: NatsConnection | undefined;
test.before(async () => {
  if (skip) return;
  nc = await connect({ servers: `${hostname}:${port || 4222}` });
  await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
});
test.after(async () => {
  if (!nc) return;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(stream).catch(() => undefined);
  await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
  await nc.close();
});

const messages = async () => (await (await nc!.jetstreamManager()).streams.info(stream)).state.messages;
const dest = parseNatsDestination({ type: "nats", url: natsUrl, stream, subject });

test("nats destination: rows go out as JSON messages that read back as the same rows, and a run loaded again publishes nothing", { skip }, async () => {
  const first = await writeNatsRows(dest, columns, once(rows), marker("0xrun1"));
  assert.equal(first.rowCount, 3);
  assert.equal(first.digest, datasetDigest(columns, rows));
  assert.equal(await messages(), 3);
  const back = await collect(await openDataset({ type: "nats", url: natsUrl, stream }));
  assert.deepEqual(back.rows, [
    ["ada", 3, 31.5, '{"tier":"gold"}'],
    ["bob", 1, 2.25, null],
    ["cy", 12, 0, "[]"],
  ], "integers read back as JSON numbers (the NATS source types them float)");

  const again = await writeNatsRows(dest, columns, once(rows), marker("0xrun1"));
  assert.equal(again.rowCount, 0);
  assert.deepEqual(JSON.parse(again.resumed!), { written: 3, digest: first.digest }, "the first load's record");
  assert.equal(await messages(), 3, "nothing published again");
});

test("nats destination: two writers loading one run at once publish its rows once; one resumes from the other's marker", { skip }, async () => {
  const before = await messages();
  const outcomes = await Promise.all([1, 2].map(() => writeNatsRows(dest, columns, once(rows), marker("0xrun2"))));
  assert.equal(await messages(), before + 3, "the message ids let JetStream drop the second copy");
  assert.equal(outcomes.filter((o) => o.resumed === undefined).length, 1);
  assert.equal(outcomes.filter((o) => o.resumed !== undefined).length, 1);
});

test("nats destination: another mode than append, and a subject no stream captures, are refused with what to fix", { skip }, async () => {
  assert.throws(() => parseNatsDestination({ type: "nats", stream, subject, mode: "upsert" }), (e: Error & { code?: string }) => e.code === "CONNECTOR_BAD_DESCRIPTOR" && /only mode is append/.test(e.message));
  assert.throws(() => parseNatsDestination({ type: "nats", stream }), /subject/);
  const nowhere = parseNatsDestination({ type: "nats", url: natsUrl, stream, subject: "nobody.listens.here" });
  await assert.rejects(writeNatsRows(nowhere, columns, once(rows), marker("0xrun3")), (e: Error & { code?: string }) => e.code === "CONNECTOR_BAD_DESCRIPTOR" && /create the stream with that subject/.test(e.message));
});
