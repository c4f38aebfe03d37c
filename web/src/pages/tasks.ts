/**
 * Tasks: the list (state, attempts, deadline, gas, latency) with plots of
 * tasks per minute and latency over time; and one task: its state machine
 * position, every attempt, its events with their gas, and its provenance
 * record with each check the serving process ran.
 */
import { formatUnits } from "viem";
import type { App } from "../app.ts";
import { latencyOf, loadTasks, receiptOf, taskLabel, type TaskView } from "../data/tasks.ts";
import { duration, errorBox, facts, h, hex, list, shortHex, stateTag, table, unixTime } from "../dom.ts";
import { barChart, lineChart } from "../plot.ts";
import { checksTable, statementFacts, verdictLine, type ProvenanceAnswer } from "../provenance.ts";

const LISTED = 50;
const MINUTES = 30;

export async function tasksPage(app: App): Promise<HTMLElement> {
  const tasks = await loadTasks(app);
  const shown = tasks.slice(0, LISTED);
  const [head, details] = await Promise.all([
    app.client.getBlock({ blockNumber: app.head }),
    Promise.all(shown.map(async (t) => ({ t, latency: await latencyOf(app, t), gas: t.completed ? (await receiptOf(app, t.completed.tx)).gasUsed : undefined }))),
  ]);
  const completedTimes = await Promise.all(tasks.filter((t) => t.completed).map((t) => latencyOf(app, t)));
  const now = Number(head.timestamp);
  const perMinute = Array.from({ length: MINUTES }, (_, i) => {
    const start = now - (MINUTES - i) * 60;
    const value = completedTimes.filter((l) => l && l.completedAt > start && l.completedAt <= start + 60).length;
    return { label: new Date((start + 60) * 1000).toISOString().slice(11, 16), value };
  });
  const latencies = tasks
    .filter((t) => t.completed)
    .map((t, i) => ({ t, l: completedTimes[i] }))
    .filter((x) => x.l)
    .map((x) => ({ x: x.l!.completedAt, y: x.l!.seconds, label: `task ${shortHex(taskLabel(x.t.taskId), 8)}`, blocks: Number(x.t.completed!.blockNumber - (x.t.submittedBlock ?? x.t.completed!.blockNumber)) }))
    .sort((a, b) => a.x - b.x);
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.record?.status ?? "?", (counts.get(t.record?.status ?? "?") ?? 0) + 1);

  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Tasks"),
    h("p", null, `${tasks.length} tasks on the market: ${[...counts].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ") || "none yet"}. Latency is the time between the blocks that hold a task's submission and its completion.`),
    h(
      "div",
      { class: "charts" },
      barChart(`Tasks completed per minute (last ${MINUTES} min of chain time)`, "tasks", perMinute),
      lineChart("Latency, submission to completion (block time)", "s", latencies),
      // Block times have whole seconds; on a chain that mines a block per transaction, blocks tell more.
      lineChart("Blocks from submission to completion", "blocks", latencies.map((p) => ({ ...p, y: p.blocks }))),
    ),
    table(
      tasks.length > LISTED ? `The newest ${LISTED} tasks` : "Tasks",
      ["Task", "State", "Attempts", "Deadline", "Enclave", "Gas (completion tx)", "Latency"],
      details.map(({ t, latency, gas }) => [
        h("a", { href: `#/tasks/${taskLabel(t.taskId)}`, "aria-label": `task ${taskLabel(t.taskId)}` }, `task ${shortHex(taskLabel(t.taskId), 8)}`),
        stateTag(t.record?.status ?? "unknown"),
        `${t.record?.attempt ?? t.attempts.length}${t.spec ? ` of ${t.spec.maxAttempts}` : ""}`,
        t.record && t.record.deadline > 0n ? unixTime(t.record.deadline) : "—",
        t.completed ? hex(t.completed.enclave) : t.attempts.at(-1) ? hex(t.attempts.at(-1)!.enclave) : "—",
        gas === undefined ? "—" : gas.toString(),
        latency ? latencyText(latency.seconds) : "—",
      ]),
      { "data-testid": "tasks" },
    ),
  );
}

export async function taskPage(app: App, param: string | undefined): Promise<HTMLElement> {
  let taskId: bigint;
  try {
    taskId = BigInt(param ?? "");
  } catch {
    return h("section", null, h("h1", { tabindex: "-1" }, "Task"), errorBox("Not a task id", `'${param}' is not a task id (a decimal or 0x number).`));
  }
  const t = (await loadTasks(app)).find((x) => x.taskId === taskId);
  if (!t) return h("section", null, h("h1", { tabindex: "-1" }, `Task ${taskLabel(taskId)}`), errorBox("No such task", `The market at ${app.deployment.market} has no events for task ${taskLabel(taskId)}.`));
  const [latency, events, provenance] = await Promise.all([
    latencyOf(app, t),
    Promise.all(t.events.map(async (e) => ({ e, time: await app.times.of(e.blockNumber), receipt: await receiptOf(app, e.transactionHash) }))),
    t.completed && app.config.policy ? app.api<ProvenanceAnswer>(`provenance?task=${t.taskId}`).catch((error: Error) => error) : Promise.resolve(undefined),
  ]);
  const spec = t.spec;
  return h(
    "section",
    null,
    h("p", null, h("a", { href: "#/tasks" }, "← all tasks")),
    h("h1", { tabindex: "-1" }, `Task ${taskLabel(t.taskId)}`),
    stateMachine(t),
    facts([
      ["State", stateTag(t.record?.status ?? "unknown")],
      ["Attempts", `${t.record?.attempt ?? t.attempts.length}${spec ? ` (at most ${spec.maxAttempts})` : ""}`],
      ["Current deadline", t.record && t.record.deadline > 0n ? unixTime(t.record.deadline) : "— (not running)"],
      ["Requester", spec ? hex(spec.requester) : "—"],
      ["Limits", spec ? `${spec.cpuMillis} ms CPU, ${spec.memoryMb} MB, ${spec.duration} s; deadline ${spec.deadlineMultiple}× the category's time` : "—"],
      ["Max price", spec ? [`${formatUnits(spec.maxPrice, 18)} of token `, hex(spec.token, 4)] : "—"],
      ["Candidates", spec ? (spec.candidates.length ? list(spec.candidates.map((c) => hex(c, 4))) : "any enclave") : "—"],
      ["Latency", latency ? `${latencyText(latency.seconds)} (block ${t.submittedBlock} → ${t.completed!.blockNumber})` : "—"],
    ]),
    table(
      "Attempts",
      ["Attempt", "Enclave", "Operator", "Price", "Deposit", "Deadline", "Outcome"],
      t.attempts.map((a) => [String(a.attempt), hex(a.enclave), hex(a.operator), a.price.toString(), a.deposit.toString(), unixTime(a.deadline), a.outcome]),
    ),
    table(
      "Events",
      ["Block", "Time", "Event", "Transaction", "Gas used (whole tx)"],
      events.map(({ e, time, receipt }) => [String(e.blockNumber), unixTime(time), e.eventName, hex(e.transactionHash), receipt.gasUsed.toString()]),
    ),
    provenanceSection(app, t, provenance),
  );
}

/** Block times have whole seconds: a task submitted and completed within one second reads "< 1 s". */
function latencyText(seconds: number): string {
  return seconds === 0 ? "< 1 s" : duration(seconds);
}

const machine = ["Open", "Accepted", "Completed"];

/** Where the task is in the market's state machine, in words and marks (not colour alone). */
function stateMachine(t: TaskView): HTMLElement {
  const status = t.record?.status ?? "None";
  const terminal = ["Cancelled", "Refunded", "Refused"].includes(status);
  return h(
    "ol",
    { class: "machine", "aria-label": "Task state machine" },
    machine.map((s) => h("li", { class: s === status ? "current" : "", "aria-current": s === status ? "step" : undefined }, s === status ? `▶ ${s} (now)` : s)),
    terminal ? h("li", { class: "current", "aria-current": "step" }, `▶ ${status} (now)`) : null,
  );
}

function provenanceSection(app: App, t: TaskView, p: ProvenanceAnswer | Error | undefined): HTMLElement {
  const heading = h("h2", null, "Provenance");
  if (!t.completed) return h("section", null, heading, h("p", null, "None yet: a task has a provenance record once it is completed."));
  const where = h("p", null, "Record ", h("code", null, t.completed.provenanceCid), " on IPFS, anchored by digest ", hex(t.completed.provenanceDigest), "; output ", h("code", null, t.completed.outputCid), ".");
  if (p === undefined) return h("section", null, heading, where, h("p", null, "Not verified: the serving process has no policy."));
  if (p instanceof Error) return h("section", null, heading, where, errorBox("Provenance not checked", p.message));
  return h(
    "section",
    { "data-testid": "provenance" },
    heading,
    verdictLine(p),
    where,
    statementFacts(p, (id) => (/^\d+$/.test(id) ? taskLabel(BigInt(id)) : id)),
    checksTable(p),
    h("p", { class: "muted" }, `Checked by the dashboard's serving process (the same checks as 'cloister verify ${taskLabel(t.taskId)}'); the browser shows its verdict. Chain ${app.chainId}.`),
  );
}
