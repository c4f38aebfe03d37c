import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { ConnectorError, openDataset, parseDescriptor } from "../../../src/enclave/connectors/index.ts";
import { CloisterError } from "../../../src/util/base-error.ts";
import { redactUrl } from "../../../src/enclave/connectors/redact.ts";

const CANARY = "canary-pw-7f3a9c";

function badDescriptor(raw: unknown): ConnectorError {
  try {
    parseDescriptor(raw);
  } catch (error) {
    assert.ok(error instanceof ConnectorError);
    assert.ok(error instanceof CloisterError);
    assert.equal(error.code, "CONNECTOR_BAD_DESCRIPTOR");
    return error;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be refused`);
}

test("the descriptor shapes of issues 13 and 14 parse", () => {
  const shapes = [
    { type: "csv", path: "purchases.csv" },
    { type: "parquet", path: "/data/x.parquet" },
    { type: "postgres", url: "postgres://127.0.0.1:5432/test", table: "cards" },
    { type: "postgres", url: "postgresql://u:p@h/db", query: "SELECT 1", cursor: "id" },
    { type: "mysql", url: "mysql://root@127.0.0.1:3306/test", table: "orders", cursor: "id" },
    { type: "nats", stream: "ORDERS" },
    { type: "nats", url: "nats://127.0.0.1:4222", stream: "ORDERS", subject: "orders.eu" },
  ];
  for (const shape of shapes) assert.deepEqual(parseDescriptor(shape), shape);
});

test("bad descriptors are refused with the field to fix", () => {
  assert.match(badDescriptor({ type: "kafka", topic: "t" }).message, /one of csv, parquet, postgres, mysql, nats/);
  assert.match(badDescriptor(null).message, /"type"/);
  assert.match(badDescriptor({ type: "csv" }).message, /path/);
  assert.match(badDescriptor({ type: "postgres", url: "postgres://h/db" }).message, /exactly one of table or query/);
  assert.match(badDescriptor({ type: "postgres", url: "postgres://h/db", table: "a", query: "SELECT 1" }).message, /exactly one of table or query/);
  assert.match(badDescriptor({ type: "mysql", url: "postgres://h/db", table: "a" }).message, /url: must be a URL with scheme mysql: or mariadb:/);
  assert.match(badDescriptor({ type: "nats", stream: "S", sujbect: "x" }).message, /sujbect/);
  assert.match(badDescriptor({ type: "csv", path: "" }).message, /path/);
});

test("a refused descriptor never shows its url's password", async () => {
  const raw = { type: "mysql", url: `postgres://u:${CANARY}@h/db`, table: "t" };
  const error = badDescriptor(raw);
  for (const text of [error.message, JSON.stringify(error.toJSON()), inspect(error, { depth: 10 })]) assert.ok(!text.includes(CANARY), text);
  await assert.rejects(openDataset(raw), (e: unknown) => e instanceof ConnectorError && !inspect(e, { depth: 10 }).includes(CANARY));
});

test("redactUrl hides the password and nothing else", () => {
  assert.equal(redactUrl(`postgres://alice:${CANARY}@db.example:5432/sales`), "postgres://alice:***@db.example:5432/sales");
  assert.equal(redactUrl("mysql://root@127.0.0.1:3306/test"), "mysql://root@127.0.0.1:3306/test");
  assert.equal(redactUrl(`not a url ${CANARY}`), "<unparseable url>");
});
