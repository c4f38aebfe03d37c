/**
 * `cloister demo clean-room`: two partners, a retailer (purchases in a csv file) and a bank (card tiers in a
 * parquet file), each with its own node and enclave process, join their data in the retailer's enclave
 * without either seeing the other's rows; the output policy suppresses a group of fewer than 5 customers;
 * the result goes to the retailer, sealed to its pinned key. Every check is told as it happens. No server.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runCollabFile } from "../../devnet/collab-embedded.ts";
import { CollabRunError } from "../../sdk/collab/errors.ts";
import { printJson, stderrReporter } from "../output.ts";
import { reportStep } from "./collab.ts";

const example = fileURLToPath(new URL("../../../examples/clean-room/collaboration.json", import.meta.url));

export async function demoCleanRoomCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" }, json: { type: "boolean", default: false } } });
  const reporter = stderrReporter({ always: !values.json });
  reporter.step("clean room: a retailer (purchases.csv) and a bank (cards.parquet) want gold-card spend per category");
  reporter.detail("neither may see the other's rows; the policy lets out only groups of at least 5 distinct customers");
  reporter.step("starting an embedded network: one node with its own enclave process per partner (SIMULATED TEE)");
  const r = await runCollabFile(example, { dataDir: values["data-dir"], onStep: (m) => reporter.detail(m), onCollabStep: (s) => reportStep(reporter, s) });
  const collaboration = `0x${r.collaborationId.toString(16).padStart(64, "0")}`;
  const result = r.result;
  if (!result) throw new CollabRunError("COLLAB_VERIFY_FAILED", "the demo's recipient is a party, but no result was opened for it");
  if (values.json) {
    printJson({ collaboration, run: r.runId, columns: result.columns, rows: result.rows, suppressed: result.suppressed, provenance: r.provenanceCid, checks: r.checks, verified: true });
    return 0;
  }
  const width = result.columns.map((c, i) => Math.max(c.length, ...result.rows.map((row) => String(row[i]).length)));
  const line = (cells: readonly unknown[]) => `  ${cells.map((v, i) => String(v).padEnd(width[i]!)).join("  ")}`.trimEnd();
  process.stdout.write(
    [
      "",
      `Delivered to the retailer (the recipient the terms pin), decrypted with its key:`,
      line(result.columns),
      ...result.rows.map(line),
      `  (${result.suppressed} group suppressed: fewer than 5 distinct gold-card customers)`,
      "",
      "Checks:",
      "  ✓ every party's enclave verified every party's EIP-712 approval of the exact terms (query and policy digests)",
      "  ✓ every party's enclave checked the SQL against the output policy before reading a row",
      "  ✓ the bank's enclave attested the compute enclave (manifest, measurement) before sealing its rows to it",
      "  ✓ the compute enclave attested the bank's enclave and checked its signature over the rows",
      "  ✓ the compute enclave sealed the result to the key the terms pin for the retailer",
      ...r.checks.map((c) => `  ✓ ${c}`),
      "",
      `Collaboration ${collaboration.slice(0, 18)}… run ${r.runId}: verified. Provenance ${r.provenanceCid}.`,
      "",
    ].join("\n"),
  );
  return 0;
}
