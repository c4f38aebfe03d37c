/**
 * The reopen keeper on the in-process chain: it reopens an attempt another
 * enclave let expire on a task its enclave could run, refunds the requester
 * after the last attempt, leaves alone what is not its business, and
 * resumes from its saved view after a restart.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { toHex, type Address } from "viem";
import { acceptTask } from "../../src/chain/actions/accept-task.ts";
import { readTask } from "../../src/chain/actions/read-task.ts";
import { submitTask } from "../../src/chain/actions/submit-task.ts";
import type { WriterClient } from "../../src/chain/clients.ts";
import { createLimiter } from "../../src/util/limiter.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { ReopenKeeperStateError, startReopenKeeper } from "../../src/host/reopen-keeper.ts";
import type { TaskSpec } from "../../src/protocol/task.ts";
import { advanceTime, makeSpec, newEnclave, registerWithOffer, startFixture, type Fixture, type TestEnclave } from "../contracts/fixture.ts";
import { until } from "./helpers.ts";

let f: Fixture;
let dir: string;
let a: TestEnclave;
let b: TestEnclave;
let c: TestEnclave;
const keepers: { stop(): Promise<void> }[] = [];

before(async () => {
  f = await startFixture();
  dir = await mkdtemp(join(tmpdir(), "cloister-keeper-"));
  [a, b, c] = [newEnclave(), newEnclave(), newEnclave()];
  await registerWithOffer(f, a, f.operators[0]!);
  await registerWithOffer(f, b, f.operators[1]!);
  await registerWithOffer(f, c, f.operators[2]!);
});

after(async () => {
  for (const k of keepers) await k.stop();
  await f?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A keeper for `enclave`, sending from `operator`, with its events collected. */
function keeper(enclave: TestEnclave, operator: WriterClient, statePath: string) {
  const events: HostEvent[] = [];
  const errors: unknown[] = [];
  const k = startReopenKeeper({
    writer: operator,
    market: f.deployment.market,
    enclave: enclave.address,
    statePath,
    fromBlock: f.deployment.deployBlock,
    pollIntervalMs: 20,
    log: { emit: (e) => events.push(e) },
    sendSerially: createLimiter(1),
    onError: (e) => errors.push(e),
  });
  keepers.push(k);
  return { events, errors, stop: () => k.stop() };
}

let salt = 0;
async function submit(candidates: Address[], overrides: Partial<TaskSpec> = {}): Promise<{ taskId: bigint; spec: TaskSpec }> {
  const spec = makeSpec(f, candidates, { deadlineMultiple: 1, ...overrides });
  const { taskId } = await submitTask(f.requester, f.deployment.market, { spec, salt: toHex(++salt, { size: 32 }) });
  return { taskId, spec };
}

const status = async (taskId: bigint) => (await readTask(f.reader, f.deployment.market, taskId)).status;
const reopenedBy = (events: HostEvent[], taskId: bigint) => events.filter((e) => e.type === "task-reopened" && e.taskId === taskId.toString());
/** Waits until the keeper has logged `count` reopens of the task (it logs once the receipt is in). */
const reopens = (events: HostEvent[], taskId: bigint, count: number, what: string) =>
  until(() => (reopenedBy(events, taskId).length >= count ? true : undefined), what, 10_000, 20);

test("reopens a candidate task another enclave let expire, and refunds the requester after the last attempt", async () => {
  const { taskId, spec } = await submit([a.address, b.address], { maxAttempts: 2 });
  const kb = keeper(b, f.operators[1]!, join(dir, "b.json"));
  await acceptTask(f.operators[0]!, f.deployment.market, { taskId, spec, enclave: a.address });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await status(taskId), "Accepted", "not reopened before the deadline");
  assert.deepEqual(reopenedBy(kb.events, taskId), []);

  const requesterBefore = await f.reader.getBalance({ address: f.requester.account.address });
  await advanceTime(f, 301n);
  await reopens(kb.events, taskId, 1, "the keeper to reopen the task");
  assert.equal(await status(taskId), "Open");
  const [reopened] = reopenedBy(kb.events, taskId);
  assert.ok(reopened?.type === "task-reopened");
  assert.equal(reopened.outcome, "reopened");
  assert.equal(reopened.attempt, 1);
  assert.equal(reopened.missedEnclave, a.address);
  const deposit = (await f.reader.getBalance({ address: f.requester.account.address })) - requesterBefore;
  assert.ok(deposit > 0n, "the missed deposit went to the requester");

  // The second (last) attempt expires too: the keeper's reopen refunds the requester.
  await acceptTask(f.operators[0]!, f.deployment.market, { taskId, spec, enclave: a.address });
  await advanceTime(f, 301n);
  await reopens(kb.events, taskId, 2, "the keeper to refund the task");
  assert.equal(await status(taskId), "Refunded");
  assert.deepEqual(reopenedBy(kb.events, taskId).map((e) => e.type === "task-reopened" && e.outcome), ["reopened", "refunded"]);
  await kb.stop();
  assert.deepEqual(kb.errors, []);
});

test("leaves alone the tasks its enclave may not run, and reopens its own enclave's missed attempts", async () => {
  const other = await submit([a.address]);
  const own = await submit([b.address]);
  const kb = keeper(b, f.operators[1]!, join(dir, "b-alone.json"));
  await acceptTask(f.operators[0]!, f.deployment.market, { taskId: other.taskId, spec: other.spec, enclave: a.address });
  await acceptTask(f.operators[1]!, f.deployment.market, { taskId: own.taskId, spec: own.spec, enclave: b.address });
  // An expired open-matching task (any enclave may run it) shows the keeper acting meanwhile.
  const open = await submit([]);
  await acceptTask(f.operators[2]!, f.deployment.market, { taskId: open.taskId, spec: open.spec, enclave: c.address });
  await advanceTime(f, 301n);
  await reopens(kb.events, open.taskId, 1, "the open-matching task to be refunded");
  assert.equal(await status(open.taskId), "Refunded");
  // b's own missed attempt can never be completed now: its keeper refunds it rather than wait for the requester.
  await reopens(kb.events, own.taskId, 1, "b's own missed attempt to be refunded");
  assert.equal(await status(own.taskId), "Refunded");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await status(other.taskId), "Accepted", "b is not a candidate of this task");
  assert.equal(reopenedBy(kb.events, other.taskId).length, 0);
  await kb.stop();
});

test("a restarted keeper reopens a task it saw before the restart", async () => {
  const path = join(dir, "restart.json");
  const { taskId, spec } = await submit([a.address, b.address]);
  const submittedAt = await f.reader.getBlockNumber({ cacheTime: 0 });
  const first = keeper(b, f.operators[1]!, path);
  const savedBlock = async () => BigInt((JSON.parse(await readFile(path, "utf8").catch(() => '{"block":"0"}')) as { block: string }).block);
  await until(async () => ((await savedBlock()) >= submittedAt ? true : undefined), "the keeper to save a block past the submission", 10_000, 20);
  await first.stop();
  // The task's spec is only in TaskSubmitted, now behind the saved block; it is accepted and expires while the keeper is down.
  await acceptTask(f.operators[0]!, f.deployment.market, { taskId, spec, enclave: a.address });
  await advanceTime(f, 301n);
  const second = keeper(b, f.operators[1]!, path);
  await reopens(second.events, taskId, 1, "the restarted keeper to refund the task");
  assert.equal(await status(taskId), "Refunded");
  await second.stop();
});

test("a view saved by the earlier format (tasks with specs) is rebuilt from the deployment block", async () => {
  const path = join(dir, "old-format.json");
  const { taskId, spec } = await submit([b.address]);
  await acceptTask(f.operators[1]!, f.deployment.market, { taskId, spec, enclave: b.address });
  const latest = await f.reader.getBlockNumber({ cacheTime: 0 });
  await writeFile(path, JSON.stringify({ block: latest.toString(), tasks: [] }));
  await advanceTime(f, 301n);
  const k = keeper(b, f.operators[1]!, path);
  await reopens(k.events, taskId, 1, "the keeper to find the attempt accepted before the saved block");
  assert.equal(await status(taskId), "Refunded");
  await k.stop();
  assert.equal((JSON.parse(await readFile(path, "utf8")) as { version: number }).version, 2);
});

test("refuses an unreadable saved view with a typed error", async () => {
  const path = join(dir, "corrupt.json");
  await writeFile(path, "{not json");
  assert.throws(() => keeper(b, f.operators[1]!, path), (e) => e instanceof ReopenKeeperStateError && e.code === "REOPEN_KEEPER_STATE" && e.message.includes(path));
});
