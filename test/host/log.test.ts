import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileHostLog, type HostEvent } from "../../src/host/log.ts";

test("host.log holds one JSON line per event, on disk as soon as emit returns, with the event's fields and types", async () => {
  const path = join(await mkdtemp(join(tmpdir(), "host-log-")), "nested", "host.log");
  const heard: HostEvent[] = [];
  const log = fileHostLog(path, (e) => heard.push(e));
  const accepted: HostEvent = { type: "task-accepted", taskId: "7", transactionHash: "0xab", gasUsed: "21000", batchSize: 2 };
  const registration: HostEvent = { type: "registration-changed", signer: "0x1", from: "attesting", state: "registered", expiry: null };
  log.emit(accepted);
  // No flush, no close: a node that crashes right now has this line on disk.
  const first = (await readFile(path, "utf8")).split("\n");
  assert.equal(first.length, 2);
  log.emit(registration);
  log.close();

  const lines = (await readFile(path, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  for (const [line, event] of [[lines[0]!, accepted], [lines[1]!, registration]] as const) {
    const { time, level, ...rest } = line;
    assert.deepEqual(rest, event, "the event's fields, names and types unchanged (null stays null, numbers stay numbers)");
    assert.equal(level, "info");
    assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(Object.keys(line).includes("pid") || Object.keys(line).includes("hostname"), false);
  }
  assert.deepEqual(heard, [accepted, registration]);
});

test("an event emitted after close (a task finishing during shutdown) does not throw and still reaches the listener", async () => {
  const path = join(await mkdtemp(join(tmpdir(), "host-log-")), "host.log");
  const heard: HostEvent[] = [];
  const log = fileHostLog(path, (e) => heard.push(e));
  log.emit({ type: "task-seen", taskId: "1" });
  log.close();
  log.close();
  log.emit({ type: "task-seen", taskId: "2" });
  assert.equal((await readFile(path, "utf8")).trimEnd().split("\n").length, 1);
  assert.equal(heard.length, 2);
});
