/**
 * `cloister demo pipeline`: a pipeline over files (no server needed) on an
 * embedded network of two nodes, every check shown. The demo is a list of
 * steps sharing one context; `grantSteps` end it with the owner grants
 * (a manipulation refused without a grant, allowed once under one, refused
 * when it is used up: demo-grant-steps.ts, also `cloister demo grants`).
 */
import { mkdtemp, readFile, rm, writeFile, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { anchorPipelineRun } from "../../chain/actions/anchor-pipeline-run.ts";
import { readPipeline } from "../../chain/actions/read-pipeline.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../devnet/embedded.ts";
import { runGrantDemoSteps } from "./demo-grant-steps.ts";
import type { PipelineRunOutcome } from "../../host/pipeline-run.ts";
import { pipelinePart, statementOfSignedEnvelope } from "../../protocol/provenance.ts";
import { rawCidOfDigest } from "../../storage/raw-cid.ts";
import { listVerifiedEnclaves } from "../../sdk/enclaves.ts";
import { loadPipelineFile } from "../../sdk/pipeline-file.ts";
import { createPipeline, verifyPipelineRun } from "../../sdk/pipelines.ts";
import { printJson, stderrReporter, type Reporter } from "../output.ts";

export interface DemoContext {
  network: EmbeddedNetwork;
  reporter: Reporter;
  /** Where the demo's files live (a temporary folder). */
  workDir: string;
  /** Every check made, in order (printed at the end, and in --json). */
  checks: string[];
  /** Values steps hand to later steps (pipelineId, runs, …). */
  state: Record<string, unknown>;
}

export interface DemoStep {
  title: string;
  run(ctx: DemoContext): Promise<void>;
}

function check(ctx: DemoContext, ok: boolean, what: string): void {
  if (!ok) throw new Error(`demo check failed: ${what}`);
  ctx.checks.push(what);
  ctx.reporter.detail(`✓ ${what}`);
}

const ORDERS = "id,customer,amount\n1,alice,12.50\n2,bob,7.25\n3,alice,3.00\n4,carol,40.00\n5,bob,1.75\n";
const MORE = "6,dave,2.00\n7,alice,1.10\n8,erin,9.99\n";

async function csvRows(path: string): Promise<string[]> {
  return (await readFile(path, "utf8")).trim().split("\n").slice(1);
}

async function runAndVerify(ctx: DemoContext, node: number): Promise<PipelineRunOutcome> {
  const { network } = ctx;
  const pipelineId = ctx.state.pipelineId as bigint;
  const outcome = await network.nodes[node]!.runPipeline(pipelineId);
  ctx.reporter.step(`node ${node}: the enclave opened the sealed spec and cursor, read ${outcome.read} row(s), ran the SQL in DuckDB, wrote ${outcome.written}; run ${outcome.run} anchored (gas ${outcome.gasUsed})`);
  const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
  const v = await verifyPipelineRun({ reader: network.requester, store: network.store, contract: network.deployment.pipelines!, pipelineId, runId: outcome.runId, enclaves: verified });
  for (const c of v.checks) check(ctx, true, c);
  return outcome;
}

export const pipelineSteps: DemoStep[] = [
  {
    title: "the owner writes a pipeline over files: orders.csv → SQL → order-cents.csv (upsert by id), incremental on id",
    async run(ctx) {
      await writeFile(join(ctx.workDir, "orders.csv"), ORDERS);
      const file = join(ctx.workDir, "orders.json");
      await writeFile(
        file,
        JSON.stringify({
          name: "orders-to-cents",
          source: { type: "csv", path: "orders.csv", cursor: "id" },
          transform: { sql: "SELECT id, customer, CAST(round(amount * 100) AS BIGINT) AS cents FROM source" },
          destination: { type: "csv", path: "order-cents.csv", mode: "upsert", key: ["id"] },
          schedule: "*/5 * * * *",
        }),
      );
      ctx.state.file = file;
      ctx.state.spec = await loadPipelineFile(file);
    },
  },
  {
    title: "the owner verifies the enclaves, seals the pipeline to both (HPKE) and registers its digest on chain",
    async run(ctx) {
      const { network } = ctx;
      const { verified } = await listVerifiedEnclaves({ reader: network.requester, registry: network.deployment.registry, fromBlock: 0n, store: network.store, policy: network.policy });
      check(ctx, verified.length === 2, `${verified.length} enclaves verified under the owner's policy: the candidates`);
      const made = await createPipeline({ writer: network.requester, store: network.store, contract: network.deployment.pipelines!, spec: ctx.state.spec as never, candidates: verified });
      ctx.state.pipelineId = made.pipelineId;
      const pkg = new TextDecoder().decode(await network.store.get(made.packageCid));
      check(ctx, !pkg.includes("orders.csv") && !pkg.includes("SELECT"), `the published package ${made.packageCid} holds no path and no SQL: only ciphertext, digests and connector types`);
      const state = await readPipeline(network.requester, network.deployment.pipelines!, made.pipelineId);
      check(ctx, state.pipelineDigest === made.pipelineDigest, `pipeline registered (gas ${made.gasUsed}); its on-chain digest is the package's SHA-256`);
    },
  },
  {
    title: "first run, on node 0",
    async run(ctx) {
      const first = await runAndVerify(ctx, 0);
      ctx.state.first = first;
      check(ctx, first.read === 5 && first.written === 5, "first run: 5 rows read, 5 written");
      check(ctx, (await csvRows(join(ctx.workDir, "order-cents.csv"))).length === 5, "order-cents.csv holds 5 rows");
    },
  },
  {
    title: "three new orders arrive; second run, incremental, on node 0",
    async run(ctx) {
      await appendFile(join(ctx.workDir, "orders.csv"), MORE);
      const second = await runAndVerify(ctx, 0);
      const first = ctx.state.first as PipelineRunOutcome;
      ctx.state.second = second;
      check(ctx, second.read === 3 && second.written === 3, "second run read only the 3 new rows, wrote 3");
      check(ctx, second.cursorBefore === first.cursorAfter, "it started from the cursor the first run anchored");
      const rows = await csvRows(join(ctx.workDir, "order-cents.csv"));
      check(ctx, rows.length === 8 && new Set(rows.map((r) => r.split(",")[0])).size === 8, "order-cents.csv holds 8 rows, each id once");
    },
  },
  {
    title: "a host replays the first run's cursor (a rollback attempt)",
    async run(ctx) {
      const { network } = ctx;
      const contract = network.deployment.pipelines!;
      const pipelineId = ctx.state.pipelineId as bigint;
      const first = ctx.state.first as PipelineRunOutcome;
      const state = await readPipeline(network.requester, contract, pipelineId);
      const outcome = await network.enclaves[0]!.runJob({
        kind: "pipeline",
        params: { binding: { chainId: BigInt(network.deployment.chainId), contract, pipelineId }, chain: { pipelineDigest: state.pipelineDigest, cursor: first.cursorBefore }, package: await network.store.get(rawCidOfDigest(state.pipelineDigest)), cursorState: null },
        evidenceCid: "replay",
      });
      const replay = pipelinePart(statementOfSignedEnvelope(outcome.provenance.bytes))!;
      check(ctx, replay.resumed && replay.runId === first.runId, "the old cursor names the first run, which the destination's run marker shows loaded: the enclave wrote nothing");
      check(ctx, (await csvRows(join(ctx.workDir, "order-cents.csv"))).length === 8, "order-cents.csv still holds 8 rows");
      const refused = await anchorPipelineRun(network.requester, contract, pipelineId, { runId: replay.runId, cursorBefore: replay.cursorBefore, cursorAfter: replay.cursorAfter, recordsRead: BigInt(replay.source.read), recordsWritten: BigInt(replay.destination.written), provenanceDigest: outcome.provenance.digest }, outcome.anchor.signature).then(
        () => "",
        (e: Error) => e.message,
      );
      check(ctx, /RunAlreadyAnchored|CursorMismatch/.test(refused), "the chain refuses to anchor it (RunAlreadyAnchored)");
    },
  },
  {
    title: "node 1, the other candidate, takes the next run: the sealed cursor opens in its enclave too",
    async run(ctx) {
      const third = await runAndVerify(ctx, 1);
      check(ctx, third.read === 0 && third.written === 0 && third.enclave === ctx.network.nodes[1]!.signer, "third run on node 1: nothing new, nothing read or written");
    },
  },
];

/** Owner grants on the same network: node 0's operator, the requester as the data owner, a DuckDB file as the dataset. */
export const grantSteps: DemoStep[] = [
  {
    title: "an operator's manipulation of the owner's data: refused without a grant, allowed once under one, refused when used up",
    async run(ctx) {
      const result = await runGrantDemoSteps(ctx.network, join(ctx.workDir, "grants"), ctx.reporter);
      ctx.checks.push(
        `without a grant the enclave refused the statement (${result.refusedWithoutGrant})`,
        `under grant ${result.grantId.slice(0, 10)}… it ran once (${result.allowed.rowsAffected} row(s) changed), the use recorded on chain with its provenance`,
        `with the grant used up the enclave refused again (${result.refusedWhenUsedUp})`,
        `the owner lists ${result.uses} use of the grant`,
      );
    },
  },
];

export async function pipelineDemoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" }, json: { type: "boolean", default: false } } });
  const reporter = stderrReporter({ always: !values.json });
  reporter.step("starting an embedded Cloister network with two nodes (one process tree, SIMULATED TEE)");
  const network = await startEmbeddedNetwork({ dataDir: values["data-dir"], nodes: 2, pipelines: false, onStep: (m) => reporter.detail(m) });
  const workDir = await mkdtemp(join(tmpdir(), "cloister-pipeline-demo-"));
  const ctx: DemoContext = { network, reporter, workDir, checks: [], state: {} };
  try {
    for (const step of [...pipelineSteps, ...grantSteps]) {
      reporter.step(step.title);
      await step.run(ctx);
    }
    const rows = await csvRows(join(workDir, "order-cents.csv"));
    if (values.json) {
      printJson({ pipeline: String(ctx.state.pipelineId), checks: ctx.checks, destinationRows: rows.length, verified: true });
    } else {
      process.stdout.write(["", "order-cents.csv (written inside the enclave):", ...rows.map((r) => `  ${r}`), "", "Checks:", ...ctx.checks.map((c) => `  ✓ ${c}`), "", "Pipeline demo: every check passed.", ""].join("\n"));
    }
    return 0;
  } finally {
    await network.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
