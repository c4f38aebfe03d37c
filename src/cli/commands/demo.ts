/**
 * `cloister demo`: a whole network in one process tree and one confidential
 * task through it, every step printed as it happens.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { formatEther } from "viem";
import { startEmbeddedNetwork } from "../../devnet/embedded.ts";
import type { HostEvent } from "../../host/log.ts";
import { printJson, stderrReporter, type Reporter } from "../output.ts";
import { reportProgress, shortId } from "./task.ts";

const examples = new URL("../../../examples/", import.meta.url);

export async function demoCommand(argv: string[]): Promise<number> {
  if (argv[0] === "pipeline") return (await import("./demo-pipeline.ts")).pipelineDemoCommand(argv.slice(1));
  if (argv[0] === "grants") return (await import("./demo-grant-steps.ts")).demoGrantsCommand(argv.slice(1));
  if (argv[0] === "clean-room") return (await import("./demo-clean-room.ts")).demoCleanRoomCommand(argv.slice(1));
  if (argv[0] === "vault") return (await import("./demo-vault.ts")).demoVaultCommand(argv.slice(1));
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" }, json: { type: "boolean", default: false } } });
  // The steps are the demo's story, told in a pipe too; with --json they are progress like any other.
  const reporter = stderrReporter({ always: !values.json });
  const program = new Uint8Array(await readFile(new URL("payroll-stats.js", examples)));
  const input = new Uint8Array(await readFile(new URL("payroll.json", examples)));

  reporter.step("starting an embedded Cloister network (one process tree)");
  const network = await startEmbeddedNetwork({
    dataDir: values["data-dir"],
    onStep: (m) => reporter.detail(m),
    onHostEvent: (node, event) => reportHostEvent(reporter, node, event),
  });
  try {
    reporter.step(`requester ${network.requester.account.address} runs examples/payroll-stats.js on a confidential payroll (${input.length} bytes, encrypted before upload)`);
    const result = await network.client.runTask({ program, input, onProgress: (p) => reportProgress(reporter, p) });
    const market = await network.requester.getBalance({ address: network.deployment.market });
    const claims = result.enclave.claims;
    if (values.json) {
      printJson({
        taskId: result.taskId,
        requester: network.requester.account.address,
        output: new TextDecoder().decode(result.output),
        enclave: { signer: result.enclave.signer, measurement: claims.measurement, teeType: claims.teeType, simulated: claims.simulated, evidenceCid: result.enclave.evidenceCid },
        provenanceCid: result.provenanceCid,
        checks: result.checks,
        escrowLeftWei: market,
        verified: true,
      });
      return 0;
    }
    const out = [
      "",
      "Decrypted output:",
      `  ${new TextDecoder().decode(result.output)}`,
      "",
      "Ran in:",
      `  enclave ${result.enclave.signer} (${claims.teeType}${claims.simulated ? ", SIMULATED TEE: development only, no hardware protection" : ""})`,
      `  measurement ${claims.measurement}`,
      `  evidence ${result.enclave.evidenceCid}`,
      `  provenance ${result.provenanceCid}`,
      "",
      "Checks made by the client:",
      ...result.checks.map((c) => `  ✓ ${c}`),
      `  escrow left in the market: ${formatEther(market)} ETH (the operator was paid)`,
      "",
      `Task ${shortId(result.taskId)}: result verified.`,
      "",
    ];
    process.stdout.write(out.join("\n"));
    return 0;
  } finally {
    await network.close();
  }
}

function reportHostEvent(reporter: Reporter, node: number, e: HostEvent): void {
  const who = `node ${node}`;
  switch (e.type) {
    case "enclave-ready":
      reporter.step(`${who}: enclave process up, keys generated and sealed inside it: signer ${e.signer}${e.simulated ? " [SIMULATED TEE]" : ""}`);
      break;
    case "enclave-registered":
      reporter.step(`${who}: DCAP quote verified by the attestation service and enclave registered on chain until ${new Date(Number(e.expiry) * 1000).toISOString()}`);
      reporter.detail(`evidence on IPFS: ${e.evidenceCid}`);
      break;
    case "task-accepted":
      reporter.step(`${who}: accepted task ${shortId(BigInt(e.taskId))} (gas ${e.gasUsed})`);
      break;
    case "task-executed":
      reporter.step(`${who}: enclave checked the program and input digests, decrypted, ran the program, encrypted the output to the requester`);
      reporter.detail(`encrypted result ${e.outputCid}, provenance ${e.provenanceCid}`);
      break;
    case "task-completed":
      reporter.step(`${who}: completion signed by the enclave checked on chain, operator paid (gas ${e.gasUsed})`);
      break;
    case "task-failed":
      reporter.step(`${who}: task ${e.taskId} failed: [${e.code}] ${e.message}`);
      break;
    case "task-refused":
      reporter.step(`${who}: task ${e.taskId} cannot run (${e.reason}); the enclave's refusal ended it, the deposit came back (gas ${e.gasUsed})`);
      break;
    case "task-skipped":
      reporter.detail(`${who}: skipped task ${e.taskId}: ${e.reason}`);
      break;
    case "task-seen":
      break;
  }
}
