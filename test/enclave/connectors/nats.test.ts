import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { connect, type NatsConnection } from "nats";
import { collect, ConnectorError, datasetDigest, openDataset } from "../../../src/enclave/connectors/index.ts";
import { closedPort, natsUrl, uniqueName, unreachable } from "./servers.ts";

const CANARY = "canary-nats-pw-c81f07";
const { hostname, port } = new URL(natsUrl);
const down = await unreachable(hostname, Number(port || 4222));
const skip = down ? `NATS unreachable: ${down}; start nats-server -js to run these tests` : false;
const stream = uniqueName("CLOISTER_CONN").toUpperCase();
const subject = `${stream.toLowerCase()}.orders`;

let nc: NatsConnection | undefined;
const publish = async (subj: string, value: unknown) => {
  await nc!.jetstream().publish(subj, new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value)));
};
test.before(async () => {
  if (skip) return;
  nc = await connect({ servers: `${hostname}:${port || 4222}` });
  await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  for (let i = 1; i <= 12; i++) await publish(subject, { id: i, customer: `c${i % 3}`, amount: i * 1.5, vip: i % 4 === 0, tags: { n: i } });
  await publish(`${stream.toLowerCase()}.other`, { id: 100, customer: "x", amount: 0, vip: false, tags: null });
});
test.after(async () => {
  if (!nc) return;
  await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
  await nc.close();
});

test("nats: a JetStream stream reads as one row per JSON message, in batches, with count and digest", { skip }, async () => {
  const reader = await openDataset({ type: "nats", url: natsUrl, stream }, { batchSize: 5 });
  assert.deepEqual(reader.columns, [
    { name: "id", type: "float" },
    { name: "customer", type: "text" },
    { name: "amount", type: "float" },
    { name: "vip", type: "boolean" },
    { name: "tags", type: "json" },
  ]);
  const rows = [];
  for await (const batch of reader) rows.push(...batch);
  const summary = reader.summary();
  assert.equal(summary.rowCount, 13);
  assert.equal(summary.cursor, "13");
  assert.deepEqual(rows[3], [4, "c1", 6, true, '{"n":4}']);
  assert.deepEqual(rows[12], [100, "x", 0, false, null]);
  assert.equal(summary.digest, datasetDigest(summary.columns, rows));
});

test("nats: a subject filter, and incremental reads past the stream sequence", { skip }, async () => {
  const first = await collect(await openDataset({ type: "nats", stream, subject }));
  assert.equal(first.rowCount, 12);
  assert.equal(first.cursor, "12");
  for (let i = 13; i <= 15; i++) await publish(subject, { id: i, customer: "c9", amount: 1, vip: false, tags: [] });
  const next = await collect(await openDataset({ type: "nats", stream, subject }, { after: first.cursor! }));
  assert.deepEqual(next.rows.map((r) => r[0]), [13, 14, 15]);
  assert.equal(next.cursor, "16", "the cursor is the stream sequence (message 13 went to another subject)");
  const none = await collect(await openDataset({ type: "nats", stream, subject }, { after: next.cursor! }));
  assert.equal(none.rowCount, 0);
  assert.equal(none.cursor, "16");
});

test("nats: unknown stream, bad cursor and a non-object message are typed", { skip }, async () => {
  await assert.rejects(openDataset({ type: "nats", stream: `${stream}_NOPE` }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_UNKNOWN_TABLE" && e.message.includes(`${stream}_NOPE`));
  await assert.rejects(openDataset({ type: "nats", stream }, { after: "abc" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_CURSOR");
  const bad = uniqueName("CLOISTER_BAD").toUpperCase();
  const jsm = await nc!.jetstreamManager();
  await jsm.streams.add({ name: bad, subjects: [`${bad.toLowerCase()}.>`] });
  try {
    await publish(`${bad.toLowerCase()}.x`, { id: 1 });
    await publish(`${bad.toLowerCase()}.x`, "not json");
    await assert.rejects(async () => collect(await openDataset({ type: "nats", stream: bad })), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_BAD_ROW" && /message 2 .* not JSON/.test(e.message));
  } finally {
    await jsm.streams.delete(bad);
  }
});

test("nats: reads leave no consumer behind, and a consumer the server refuses fails at once", { skip }, async () => {
  await collect(await openDataset({ type: "nats", stream, subject }, { batchSize: 4 }));
  const jsm = await nc!.jetstreamManager();
  assert.equal((await jsm.streams.info(stream)).state.consumer_count, 0);
  const started = Date.now();
  await assert.rejects(openDataset({ type: "nats", stream, subject: "elsewhere.orders" }), (e: unknown) => e instanceof ConnectorError && e.code === "CONNECTOR_QUERY_FAILED" && e.message.includes(stream));
  assert.ok(Date.now() - started < 5_000, `the refusal took ${Date.now() - started} ms`);
  assert.equal((await jsm.streams.info(stream)).state.consumer_count, 0);
});

test("nats: an unreachable server is typed and never shows the password", async () => {
  const closed = await closedPort();
  const error = await openDataset({ type: "nats", url: `nats://u:${CANARY}@127.0.0.1:${closed}`, stream: "S" }).then(() => assert.fail("expected a refusal"), (e: unknown) => e);
  assert.ok(error instanceof ConnectorError);
  assert.equal(error.code, "CONNECTOR_UNREACHABLE");
  for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 })]) assert.ok(!text.includes(CANARY), text);
});
