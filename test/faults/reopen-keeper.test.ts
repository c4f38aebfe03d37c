/**
 * The reopen keeper on the in-process chain: it reopens an attempt another
 * enclave let expire on a task its enclave could run, refunds the requester
 * after the last attempt, leaves alone what is not its business, and
 * resumes from its saved view (in the chain follower's checkpoint) after a
 * restart, a view saved by an earlier version's own file included.
 */
import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
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
import { ChainFollower } from "../../src/chain/follower.ts";
import { fileCheckpoint, FollowerCheckpointError } from "../../src/chain/follower-checkpoint.ts";
import { openNodeFollower } from "../../src/host/node-follower.ts";
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
/** A node's follower with its checkpoint in `dataDir` (older files migrated), or one with its checkpoint at `path`. */
type FollowerAt = { dataDir: string } | { path: string };

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

/** A keeper for `enclave`, sending from `operator`, on a follower of its own, with its events collected. */
function keeper(enclave: TestEnclave, operator: WriterClient, at: string | FollowerAt) {
  const events: HostEvent[] = [];
  const errors: unknown[] = [];
  const where = typeof at === "string" ? { path: at } : at;
  const options = { reader: operator, pollIntervalMs: 20, onError: (e: unknown) => errors.push(e) };
  const follower = "dataDir" in where ? openNodeFollower(where.dataDir, options) : new ChainFollower({ ...options, checkpoint: fileCheckpoint(where.path) });
  const keeper = startReopenKeeper({
    writer: operator,
    market: f.deployment.market,
    enclave: enclave.address,
    follower,
    fromBlock: f.deployment.deployBlock,
    pollIntervalMs: 20,
    log: { emit: (e) => events.push(e) },
    sendSerially: createLimiter(1),
    onError: (e) => errors.push(e),
  });
  follower.start();
  const k = { stop: () => Promise.all([keeper.stop(), follower.stop()]).then(() => {}) };
  keepers.push(k);
  return { events, errors, stop: k.stop };
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
  // The follower saves at most once a second while positions move.
  const savedBlock = async () => BigInt((JSON.parse(await readFile(path, "utf8").catch(() => "{}")) as { positions?: { reopens?: { block: string } } }).positions?.reopens?.block ?? "0");
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

test("a view saved in the keeper's own file by an earlier version is migrated, attempts and block", async () => {
  const dataDir = join(dir, "migrate-v2");
  const { taskId, spec } = await submit([b.address]);
  const accepted = await acceptTask(f.operators[1]!, f.deployment.market, { taskId, spec, enclave: b.address });
  const latest = await f.reader.getBlockNumber({ cacheTime: 0 });
  const { assignment } = accepted;
  const attempts = [{ taskId: taskId.toString(), ...assignment, price: assignment.price.toString(), deposit: assignment.deposit.toString(), attempt: accepted.attempt, deadline: accepted.deadline.toString() }];
  await mkdir(dataDir, { recursive: true });
  await writeFile(join(dataDir, "reopen-keeper.json"), JSON.stringify({ version: 2, block: latest.toString(), attempts }));
  await advanceTime(f, 301n);
  // Opening the node's follower migrates the file: the keeper's position and its attempts, in the new checkpoint.
  openNodeFollower(dataDir, { reader: f.reader, pollIntervalMs: 20, onError: () => {} });
  const migrated = JSON.parse(await readFile(join(dataDir, "chain-checkpoint.json"), "utf8")) as { positions: Record<string, unknown> };
  assert.deepEqual(migrated.positions, { reopens: { block: latest.toString(), state: attempts } });
  // The acceptance is behind the saved block: only the migrated view knows of it.
  const k = keeper(b, f.operators[1]!, { dataDir });
  await reopens(k.events, taskId, 1, "the keeper to reopen the attempt it knew of before the migration");
  assert.equal(await status(taskId), "Refunded");
  await k.stop();
  await assert.rejects(access(join(dataDir, "reopen-keeper.json")), "the old file is gone");
  const saved = JSON.parse(await readFile(join(dataDir, "chain-checkpoint.json"), "utf8")) as { version: number; positions: { reopens: { block: string } } };
  assert.equal(saved.version, 1);
  assert.ok(BigInt(saved.positions.reopens.block) > latest);
});

test("a view of the oldest format (tasks with specs) is rebuilt from the deployment block", async () => {
  const dataDir = join(dir, "migrate-v1");
  const { taskId, spec } = await submit([b.address]);
  await acceptTask(f.operators[1]!, f.deployment.market, { taskId, spec, enclave: b.address });
  const latest = await f.reader.getBlockNumber({ cacheTime: 0 });
  await mkdir(dataDir, { recursive: true });
  await writeFile(join(dataDir, "reopen-keeper.json"), JSON.stringify({ block: latest.toString(), tasks: [] }));
  await advanceTime(f, 301n);
  const k = keeper(b, f.operators[1]!, { dataDir });
  await reopens(k.events, taskId, 1, "the keeper to find the attempt accepted before the saved block");
  assert.equal(await status(taskId), "Refunded");
  await k.stop();
});

test("refuses an unreadable checkpoint or saved view with a typed error", async () => {
  const path = join(dir, "corrupt.json");
  await writeFile(path, "{not json");
  assert.throws(() => keeper(b, f.operators[1]!, path), (e) => e instanceof FollowerCheckpointError && e.code === "FOLLOWER_CHECKPOINT" && e.message.includes(path));
  await writeFile(path, JSON.stringify({ version: 1, positions: { reopens: { block: "1", state: "no attempts" } } }));
  assert.throws(() => keeper(b, f.operators[1]!, path), (e) => e instanceof ReopenKeeperStateError && e.code === "REOPEN_KEEPER_STATE");
});
