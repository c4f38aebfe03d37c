/**
 * Collaborations (clean room): parties, approvals, policy, runs (each with its provenance verdict from the
 * serving process, loaded lazily), rows suppressed, differential-privacy budget spent.
 */
import type { Address, Hex } from "viem";
import { readContract } from "viem/actions";
import { collaborationsAbi } from "../../../src/chain/abi/Collaborations.ts";
import type { App } from "../app.ts";
import { facts, h, hex, notDeployed, simulatedMark, stateTag, table } from "../dom.ts";
import { lazyVerdict } from "../provenance.ts";

interface Terms {
  parties: readonly { account: Address; operator: Address; measurement: Hex; manifestRole: string }[];
  computeParty: number;
  queryDigest: Hex;
  queryText: string;
  policyDigest: Hex;
  maxRuns: number;
  dpBudget: bigint;
  recipient: string;
  allowSimulated: boolean;
}
interface Run {
  collaborationId: bigint;
  runId: number;
  enclave: Address;
  rowsDelivered: bigint;
  rowsSuppressed: bigint;
  epsilonSpent: bigint;
  dpSpent: bigint;
}

export async function collaborationsPage(app: App): Promise<HTMLElement> {
  const title = h("h1", { tabindex: "-1" }, "Collaborations");
  const log = await app.events("collaborations");
  if (!log) return h("section", null, title, notDeployed("Collaborations (clean room)", "Collaborations"));
  const created = log.named<{ collaborationId: bigint; creator: Address; termsHash: Hex; terms: Terms }>("CollaborationCreated");
  const sections = await Promise.all(
    created.reverse().map(async (c) => {
      const id = c.args.collaborationId;
      const [maxRuns, runs, dpBudget, dpSpent, partyCount, allowSimulated, approvals] = await readContract(app.client, { address: log.address, abi: collaborationsAbi, functionName: "collaborations", args: [id] });
      const approved = new Map<string, boolean>();
      for (const e of log.all()) {
        const a = e.args as { collaborationId?: bigint; party?: Address };
        if (a.collaborationId !== id || !a.party) continue;
        if (e.eventName === "Approved") approved.set(a.party.toLowerCase(), true);
        if (e.eventName === "ApprovalWithdrawn") approved.set(a.party.toLowerCase(), false);
      }
      const fully = log.named<{ collaborationId: bigint }>("FullyApproved").some((e) => e.args.collaborationId === id);
      const runEvents = log.named<Run>("RunRecorded").filter((e) => e.args.collaborationId === id);
      const suppressed = runEvents.reduce((s, e) => s + e.args.rowsSuppressed, 0n);
      const t = c.args.terms;
      return h(
        "article",
        { class: "card", "data-testid": "collaboration", "data-id": id.toString() },
        h("h2", null, `Collaboration ${shortId(id)}`, " ", stateTag(fully ? "approved" : "awaiting approvals"), allowSimulated ? [" ", simulatedMark(), h("span", { class: "muted" }, " enclaves allowed")] : null),
        facts([
          ["Query", h("code", null, t.queryText || `(digest ${t.queryDigest})`)],
          ["Policy digest", hex(t.policyDigest, 8)],
          ["Approvals", `${countBits(Number(approvals))} of ${partyCount}`],
          ["Runs", `${runs} of at most ${maxRuns}`],
          ["Rows suppressed (all runs)", suppressed.toString()],
          ["DP budget spent", h("span", null, `${dpSpent} of ${dpBudget}`, " ", meter(Number(dpSpent), Number(dpBudget)))],
          ["Result recipient", t.recipient],
        ]),
        table("Parties", ["#", "Account", "Operator", "Requirement", "Approved"], t.parties.map((p, i) => [String(i), hex(p.account), hex(p.operator), h("span", null, /^0x0*$/.test(p.manifestRole) ? "measurement pinned" : hex(p.manifestRole), i === t.computeParty ? " (computes)" : ""), approved.get(p.account.toLowerCase()) ? "✓ yes" : "✗ no"])),
        table(
          "Runs",
          ["Run", "Enclave", "Rows delivered", "Rows suppressed", "ε spent", "DP spent", "Provenance"],
          runEvents.map((e) => [
            String(e.args.runId),
            hex(e.args.enclave),
            e.args.rowsDelivered.toString(),
            e.args.rowsSuppressed.toString(),
            e.args.epsilonSpent.toString(),
            e.args.dpSpent.toString(),
            lazyVerdict(app, `collaboration=${id}&run=${e.args.runId}`, `0x${id.toString(16)}:${e.args.runId}`),
          ]),
          { "data-testid": "collaboration-runs" },
        ),
      );
    }),
  );
  return h("section", null, title, sections.length ? sections : h("p", { class: "empty" }, "No collaboration has been created on this network yet."));
}

function shortId(id: bigint): string {
  return id < 1n << 64n ? id.toString() : `0x${id.toString(16).slice(0, 10)}…`;
}

function countBits(n: number): number {
  let c = 0;
  for (let x = n; x; x &= x - 1) c++;
  return c;
}

/** A meter with its numbers in text too. */
export function meter(value: number, max: number): HTMLElement {
  return h("meter", { min: 0, max: Math.max(max, 1), value, "aria-label": `${value} of ${max}` });
}
