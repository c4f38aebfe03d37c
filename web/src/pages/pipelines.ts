/**
 * Pipelines (runs with their counts and cursors) and grants (limits and every use), each run and use with its
 * provenance verdict from the serving process, loaded lazily.
 */
import type { Address, Hex } from "viem";
import { readContract } from "viem/actions";
import { grantsAbi } from "../../../src/chain/abi/Grants.ts";
import { pipelinesAbi } from "../../../src/chain/abi/Pipelines.ts";
import type { App } from "../app.ts";
import type { EventLog } from "../data/events.ts";
import { facts, h, hex, list, notDeployed, stateTag, table, unixTime } from "../dom.ts";
import { lazyVerdict } from "../provenance.ts";

export async function pipelinesPage(app: App): Promise<HTMLElement> {
  const [pipelines, grants] = await Promise.all([app.events("pipelines"), app.events("grants")]);
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Pipelines & grants"),
    h("h2", null, "Pipelines"),
    pipelines ? await pipelineCards(app, pipelines) : notDeployed("Pipelines", "Pipelines"),
    h("h2", null, "Grants"),
    grants ? await grantCards(app, grants) : notDeployed("Grants", "Grants"),
  );
}

interface Anchored {
  pipelineId: bigint;
  runId: Hex;
  enclave: Address;
  run: number;
  cursorBefore: Hex;
  cursorAfter: Hex;
  recordsRead: bigint;
  recordsWritten: bigint;
  provenanceDigest: Hex;
}

async function pipelineCards(app: App, log: EventLog): Promise<HTMLElement | HTMLElement[]> {
  const registered = log.named<{ pipelineId: bigint; owner: Address; pipelineDigest: Hex; candidates: readonly Address[]; schedule: string }>("PipelineRegistered");
  if (registered.length === 0) return h("p", { class: "empty" }, "No pipeline has been registered on this network yet.");
  return Promise.all(
    registered.reverse().map(async (p) => {
      const id = p.args.pipelineId;
      const [owner, runs, retired, requests, , cursor] = await readContract(app.client, { address: log.address, abi: pipelinesAbi, functionName: "pipelines", args: [id] });
      const anchored = log.named<Anchored>("RunAnchored").filter((e) => e.args.pipelineId === id);
      const times = await Promise.all(anchored.map((e) => app.times.of(e.blockNumber)));
      return h(
        "article",
        { class: "card", "data-testid": "pipeline" },
        h("h3", null, `Pipeline ${shortId(id)}`, " ", stateTag(retired ? "retired" : "active")),
        facts([
          ["Owner", hex(owner)],
          ["Schedule", p.args.schedule || "—"],
          ["Candidate enclaves", list(p.args.candidates.map((c) => hex(c, 4)))],
          ["Runs", String(runs)],
          ["Runs requested by the owner", String(requests)],
          ["Cursor now", hex(cursor, 8)],
        ]),
        table(
          "Runs",
          ["Run", "Time", "Enclave", "Records read", "Records written", "Cursor before → after", "Provenance"],
          anchored.map((e, i) => [
            String(e.args.run),
            unixTime(times[i]!),
            hex(e.args.enclave),
            e.args.recordsRead.toString(),
            e.args.recordsWritten.toString(),
            h("span", null, hex(e.args.cursorBefore, 4), " → ", hex(e.args.cursorAfter, 4)),
            lazyVerdict(app, `pipeline=${id}&run=${e.args.run}`, e.args.runId),
          ]),
          { "data-testid": "pipeline-runs" },
        ),
      );
    }),
  );
}

/** The operation bits, as src/protocol/grants.ts GRANT_OPERATIONS names them. */
const operationNames = ["read", "insert", "update", "delete"];

async function grantCards(app: App, log: EventLog): Promise<HTMLElement | HTMLElement[]> {
  const created = log.named<{ grantId: bigint; owner: Address; operator: Address; terms: { dataset: Hex; operations: number; purpose: string; notBefore: number; expiry: number; maxUses: number } }>("GrantCreated");
  if (created.length === 0) return h("p", { class: "empty" }, "No grant has been created on this network yet.");
  return Promise.all(
    created.reverse().map(async (g) => {
      const id = g.args.grantId;
      const [owner, notBefore, expiry, operations, revoked, operator, maxUses, uses] = await readContract(app.client, { address: log.address, abi: grantsAbi, functionName: "grants", args: [id] });
      const used = log.named<{ grantId: bigint; runId: Hex; enclave: Address; provenanceDigest: Hex; use: number }>("GrantUsed").filter((e) => e.args.grantId === id);
      const ops = operationNames.filter((_, bit) => operations & (1 << bit));
      return h(
        "article",
        { class: "card", "data-testid": "grant" },
        h("h3", null, `Grant ${shortId(id)}`, " ", stateTag(revoked ? "revoked" : "in force")),
        facts([
          ["Owner", hex(owner)],
          ["Operator", hex(operator)],
          ["Dataset", hex(g.args.terms.dataset, 8)],
          ["Purpose", g.args.terms.purpose || "—"],
          ["Operations", `${ops.join(", ") || "none"} (mask ${operations})`],
          ["Valid", `${unixTime(notBefore)} → ${unixTime(expiry)}`],
          ["Uses", `${uses} of at most ${maxUses}`],
        ]),
        table(
          "Every use",
          ["Use", "Run", "Enclave", "Provenance digest", "Provenance"],
          used.map((e) => [String(e.args.use), hex(e.args.runId), hex(e.args.enclave), hex(e.args.provenanceDigest), lazyVerdict(app, `grant=${id}&use=${e.args.use}`, "<the use's provenance file> --network <dir>")]),
          { "data-testid": "grant-uses" },
        ),
      );
    }),
  );
}

function shortId(id: bigint): string {
  return id < 1n << 64n ? id.toString() : `0x${id.toString(16).slice(0, 10)}…`;
}
