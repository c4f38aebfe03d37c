/**
 * A descriptor's `pin`: postgres and mysql only, 64 hex digits, and never opened without the enclave's network (which
 * would mean a plain socket to a server the owner asked to reach over pinned TLS).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { databaseEndpoint, splitPin } from "../../../src/enclave/connectors/endpoint.ts";
import type { EnclaveNet } from "../../../src/enclave/net/connect.ts";

const pin = "ab".repeat(32);
const pinned = { type: "postgres", url: "postgres://db.example/bank", table: "cards", pin };
const badDescriptor = (message: RegExp) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, "CONNECTOR_BAD_DESCRIPTOR");
  assert.match((e as Error).message, message);
  return true;
};

test("a pinned postgres or mysql descriptor opens through the enclave network with the certificate pinned; without a pin nothing changes", () => {
  const net = {} as EnclaveNet;
  const { descriptor, network } = databaseEndpoint(pinned, net);
  assert.deepEqual(descriptor, { type: "postgres", url: "postgres://db.example/bank", table: "cards" });
  assert.deepEqual(network, { net, pin: { kind: "certificate", sha256: pin } });
  const mysqlPinned = databaseEndpoint({ ...pinned, type: "mysql", url: "mysql://db.example/bank" }, net);
  assert.deepEqual(mysqlPinned, { descriptor: { type: "mysql", url: "mysql://db.example/bank", table: "cards" }, network: { net, pin: { kind: "certificate", sha256: pin } } });
  const plain = { type: "csv", path: "a.csv" };
  assert.deepEqual(databaseEndpoint(plain, undefined), { descriptor: plain });
});

test("a pin without the enclave network, on another type, or not 64 hex digits is refused", () => {
  assert.throws(() => databaseEndpoint(pinned, undefined), badDescriptor(/needs the enclave's network/));
  assert.throws(() => splitPin({ type: "nats", stream: "orders", pin }), badDescriptor(/for postgres and mysql/));
  assert.throws(() => splitPin({ ...pinned, pin: "ab" }), badDescriptor(/for postgres and mysql/));
});
