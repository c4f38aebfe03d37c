/**
 * Provenance verdicts of the serving process (GET api/provenance), shown the
 * same way for every job kind: a verdict line with SIMULATED in text, the
 * job and enclave, and each check. Runs and uses on the list pages load
 * theirs lazily: each cell fills in when its answer comes, at most a few
 * requests at a time, and a settled answer is reused on the next render.
 */
import type { App } from "./app.ts";
import { facts, h, hex, simulatedMark, table, verdict } from "./dom.ts";

export interface ProvenanceAnswer {
  ok: boolean;
  policy: string;
  checks: { name: string; ok: boolean; detail: string }[];
  statement?: { job: { kind: string; id: string }; enclave: { signer: string; simulated: boolean; measurement: string; evidenceCid: string }; startedOn: string; finishedOn: string };
}

/** The verdict line: ✓/✗ in words, the policy, SIMULATED when the record's enclave is. */
export function verdictLine(p: ProvenanceAnswer): HTMLElement {
  return h("p", { class: "verdict-line" }, verdict(p.ok, "provenance verified", "provenance NOT verified"), ` under policy "${p.policy}"`, p.statement?.enclave.simulated ? [" ", simulatedMark()] : null);
}

/** The record's job, enclave and times, when the record could be read. */
export function statementFacts(p: ProvenanceAnswer, jobLabel: (id: string) => string = (id) => id): HTMLElement | null {
  const s = p.statement;
  return s ? facts([["Job", `${s.job.kind} ${jobLabel(s.job.id)}`], ["Enclave", hex(s.enclave.signer)], ["Measurement", hex(s.enclave.measurement, 8)], ["Ran", `${s.startedOn} → ${s.finishedOn}`]]) : null;
}

export function checksTable(p: ProvenanceAnswer, caption = "Checks"): HTMLElement {
  return table(caption, ["Check", "Result", "Detail"], p.checks.map((c) => [c.name, verdict(c.ok, "passed", "FAILED"), c.detail]), { "data-testid": "checks" });
}

type Settled = { block: bigint; answer: ProvenanceAnswer } | { block: bigint; error: string };

const PARALLEL = 4;
const settled = new Map<string, Settled>();
const pending = new Map<string, Promise<Settled>>();
const queue: (() => void)[] = [];
let running = 0;

/**
 * A cell for the verdict of `query` (e.g. "pipeline=1&run=2"), checked the way `cloister verify <command>` does:
 * filled now when the answer is known (a verified record stays verified; any other answer until the next block),
 * else when it comes.
 */
export function lazyVerdict(app: App, query: string, command: string): HTMLElement {
  const cell = h("div", { class: "lazy-verdict", "data-testid": "verdict", "aria-live": "polite" });
  if (!app.config.policy) return fill(cell, { block: app.head, error: "the serving process has no policy" }, command);
  const known = settled.get(query);
  if (known && (known.block === app.head || ("answer" in known && known.answer.ok))) return fill(cell, known, command);
  cell.append(h("span", { class: "muted" }, "checking provenance…"));
  cell.dataset.state = "checking";
  void request(app, query).then((s) => fill(cell, s, command));
  return cell;
}

function fill(cell: HTMLElement, s: Settled, command: string): HTMLElement {
  cell.dataset.state = "answer" in s ? (s.answer.ok ? "verified" : "failed") : "error";
  if ("error" in s) {
    cell.replaceChildren(verdict(false, "", "provenance not checked"), `: ${s.error}`);
    return cell;
  }
  const p = s.answer;
  cell.replaceChildren(
    verdictLine(p),
    h("details", null, h("summary", null, `${p.checks.length} check${p.checks.length === 1 ? "" : "s"}${p.ok ? "" : `, ${p.checks.filter((c) => !c.ok).length} failed`}`), statementFacts(p), checksTable(p), h("p", { class: "muted" }, `The same checks as 'cloister verify ${command}'.`)),
  );
  return cell;
}

function request(app: App, query: string): Promise<Settled> {
  let p = pending.get(query);
  if (!p) {
    const block = app.head;
    p = slot()
      .then(() => app.api<ProvenanceAnswer>(`provenance?${query}`))
      .then((answer): Settled => ({ block, answer }), (error: Error): Settled => ({ block, error: error.message }))
      .finally(release)
      .then((s) => {
        settled.set(query, s);
        pending.delete(query);
        return s;
      });
    pending.set(query, p);
  }
  return p;
}

function slot(): Promise<void> {
  if (running < PARALLEL) {
    running++;
    return Promise.resolve();
  }
  return new Promise((resolve) => queue.push(() => (running++, resolve())));
}

function release(): void {
  running--;
  queue.shift()?.();
}
