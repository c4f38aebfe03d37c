/**
 * `cloister collab run <file> [--data-dir D] [--json]`: a clean-room collaboration end to end on an embedded
 * network (one node and enclave process per party): create, approve by every party, run, deliver to the
 * recipient party's node, print the delivered rows. A refused query exits 1 with the typed error; a bad
 * file or an unreachable source exits 2 with what to fix.
 */
import { parseArgs } from "node:util";
import { runCollabFile } from "../../devnet/collab-embedded.ts";
import { CollabRefusedError, isInputProblem } from "../../sdk/collab/errors.ts";
import type { CollabStep } from "../../sdk/collab/run.ts";
import { CloisterError } from "../../util/base-error.ts";
import { UsageError } from "../errors.ts";
import { networkParseOptions, signerParseOptions } from "../network-options.ts";
import { printJson, silentReporter, stderrReporter, type Reporter } from "../output.ts";
import { collabUsage } from "../usage.ts";

export async function collabCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "run") return collabRun(rest);
  if (sub === "create" || sub === "approve" || sub === "withdraw" || sub === "status" || sub === "runs") return (await import("./collab-network.ts")).collabNetworkCommand(sub, rest);
  throw new UsageError(`unknown collab command '${sub ?? ""}'\n\n${collabUsage}`);
}

async function collabRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    // The network form's flags too (collab-network.ts parses them again).
    options: { ...networkParseOptions, ...signerParseOptions, "data-dir": { type: "string" }, json: { type: "boolean", default: false }, quiet: { type: "boolean", default: false }, key: { type: "string" }, timeout: { type: "string" } },
  });
  if (positionals.length !== 1) throw new UsageError(`collab run takes exactly one collaboration file (or, with --network, a collaboration id)\n\n${collabUsage}`);
  if (values.network !== undefined || /^0x[0-9a-fA-F]+$/.test(positionals[0]!)) return (await import("./collab-network.ts")).collabNetworkCommand("run", argv);
  const reporter = values.quiet || values.json ? silentReporter : stderrReporter();
  reporter.step("starting an embedded network: one node, with its own enclave process, per party");
  try {
    const r = await runCollabFile(positionals[0]!, { dataDir: values["data-dir"], onStep: (m) => reporter.detail(m), onCollabStep: (s) => reportStep(reporter, s) });
    const collaboration = `0x${r.collaborationId.toString(16).padStart(64, "0")}`;
    if (!r.result) {
      // A table or an endpoint received the rows from the enclave; this side saw only the receipt.
      if (values.json) printJson({ collaboration, run: r.runId, deliveredTo: r.deliveredTo, provenance: r.provenanceCid, verified: true, releaseProved: r.releasedAt !== undefined });
      else process.stdout.write(`rows delivered to ${r.deliveredTo} by the compute enclave; collaboration ${collaboration} run ${r.runId}; provenance ${r.provenanceCid}\n`);
      return 0;
    }
    if (values.json) {
      printJson({ collaboration, run: r.runId, columns: r.result.columns, rows: r.result.rows, suppressed: r.result.suppressed, provenance: r.provenanceCid, verified: true, releaseProved: r.releasedAt !== undefined });
    } else {
      reporter.step("verified");
      for (const c of r.checks) reporter.detail(`✓ ${c}`);
      process.stdout.write(`${table(r.result.columns, r.result.rows)}\n`);
      process.stdout.write(`(${r.result.rows.length} rows delivered to ${r.deliveredTo}, ${r.result.suppressed} suppressed by the policy; collaboration ${collaboration} run ${r.runId}; provenance ${r.provenanceCid})\n`);
    }
    return 0;
  } catch (e) {
    throw inputProblemAsUsage(e);
  }
}

/** A bad file or a source that cannot be read becomes a usage error (exit status 2); any other error is as it was (1). */
export function inputProblemAsUsage(e: unknown): unknown {
  if (e instanceof CollabRefusedError && isInputProblem(e.code)) return new UsageError(`${e.code}: ${e.message}`, { cause: e, details: { code: e.code, party: e.party } });
  if (e instanceof CloisterError && isInputProblem(e.code)) return new UsageError(`${e.code}: ${e.message}`, { cause: e, details: { code: e.code } });
  return e;
}

export function reportStep(reporter: Reporter, s: CollabStep): void {
  switch (s.step) {
    case "created":
      reporter.step(`collaboration 0x${s.collaborationId.toString(16).slice(0, 12)}… created on chain: terms, query digest, policy digest, recipient pin (gas ${s.gasUsed})`);
      break;
    case "approved":
      reporter.step(`${s.party} signed its EIP-712 approval of the terms; its node relayed it (gas ${s.gasUsed})`);
      break;
    case "partner-sealed":
      reporter.step(`${s.party}'s enclave checked every approval, attested the compute enclave, read its data inside the enclave and sealed it to the compute enclave`);
      for (const d of s.datasets) reporter.detail(`${d.name}: ${d.rows} rows${d.filter ? ` sent (those the query's own conditions keep: ${d.filter})` : ""}, digest ${d.digest.slice(0, 18)}…`);
      break;
    case "computed":
      reporter.step(`the compute enclave attested every partner, ran the approved SQL in DuckDB under the policy: ${s.rowsDelivered} rows delivered, ${s.rowsSuppressed} suppressed, epsilon ${s.epsilonSpent}`);
      break;
    case "recorded":
      reporter.step(`run ${s.runId} recorded on chain with the compute enclave's signature (gas ${s.gasUsed})`);
      break;
    case "delivered":
      reporter.step(`the result, sealed to ${s.party}'s pinned key, delivered to ${s.party}'s node (${s.path})`);
      break;
  }
}

export function table(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [columns.map(String), ...rows.map((r) => r.map((v) => (v === null ? "NULL" : String(v))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}
