/**
 * `cloister task run <program.js> --input <file> [--data-dir <dir> | --network <dir> --account <i>] [--json]`:
 * runs a program as a confidential task, on an embedded network or a running
 * one, and prints the decrypted, verified output on stdout.
 */
import { parseArgs } from "node:util";
import { startEmbeddedNetwork } from "../../devnet/embedded.ts";
import { TaskProgramError } from "../../sdk/errors.ts";
import type { TaskProgress } from "../../sdk/client.ts";
import { parsePositiveInt, readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";
import { connectFromFlags, networkParseOptions, signerParseOptions, wantsRemoteNetwork } from "../network-options.ts";
import { printJson, stderrReporter, silentReporter, type Reporter } from "../output.ts";
import { taskUsage } from "../usage.ts";
export async function taskCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "run") throw new UsageError(`unknown task command '${sub ?? ""}'\n\n${taskUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      input: { type: "string" },
      "data-dir": { type: "string" },
      "timeout-ms": { type: "string" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      ...networkParseOptions,
      ...signerParseOptions,
    },
  });
  if (positionals.length !== 1) throw new UsageError(`task run takes exactly one program file\n\n${taskUsage}`);
  if (!values.input) throw new UsageError("task run needs --input <file> (use /dev/null for an empty input)");
  const program = await readInputFile(positionals[0]!, "program");
  const input = await readInputFile(values.input, "input");
  const timeoutMs = parsePositiveInt(values["timeout-ms"], "--timeout-ms", 60_000);
  const reporter = values.quiet || values.json ? silentReporter : stderrReporter();

  // An explicit --data-dir asks for the embedded network, whatever CLOISTER_NETWORK says.
  const remote = wantsRemoteNetwork(values, values["data-dir"] !== undefined);
  if (remote && values["data-dir"]) throw new UsageError("--data-dir is for an embedded network; a running network is given by --network (or --rpc and --ipfs)");
  if (!remote && values.account !== undefined) throw new UsageError("--account <i> picks one of a devnet's accounts: give the devnet with --network <dir> (or CLOISTER_NETWORK)");
  reporter.step(remote ? "connecting to the network" : "starting an embedded network");
  const network = remote ? await connectFromFlags(values) : await startEmbeddedNetwork({ dataDir: values["data-dir"], onStep: (m) => reporter.detail(m) });
  try {
    const result = await network.client.runTask({ program, input, timeoutMs, onProgress: (p) => reportProgress(reporter, p) });
    if (values.json) {
      printJson({
        taskId: result.taskId,
        requester: ("writer" in network ? network.writer : network.requester).account.address,
        output: new TextDecoder().decode(result.output),
        outputBase64: Buffer.from(result.output).toString("base64"),
        enclave: { signer: result.enclave.signer, measurement: result.enclave.claims.measurement, teeType: result.enclave.claims.teeType, simulated: result.enclave.claims.simulated },
        outputCid: result.outputCid,
        provenanceCid: result.provenanceCid,
        checks: result.checks,
        verified: true,
      });
    } else {
      process.stdout.write(result.output);
    }
    return 0;
  } catch (error) {
    if (error instanceof TaskProgramError) {
      if (values.json) printJson({ taskId: error.taskId, verified: true, error: { code: error.code, message: error.programMessage } });
      process.stderr.write(`cloister: the program failed inside the enclave (${error.code}): ${error.programMessage}\n`);
      return 1;
    }
    throw error;
  } finally {
    await network.close();
  }
}

export function reportProgress(reporter: Reporter, p: TaskProgress): void {
  switch (p.step) {
    case "enclaves-verified":
      reporter.step(`verified ${p.verified.length} enclave(s) against the client's own attestation policy`);
      for (const e of p.verified) reporter.detail(`${e.signer} ${e.claims.teeType}${e.claims.simulated ? " SIMULATED" : ""} measurement ${e.claims.measurement.slice(0, 16)}…`);
      for (const r of p.rejected) reporter.detail(`rejected ${r.signer}: ${r.reason}`);
      break;
    case "submitted":
      reporter.step(`task ${shortId(p.task.taskId)} submitted with escrow (gas ${p.task.submitGas}); data key wrapped to ${p.task.spec.candidates.length} candidate enclave(s)`);
      break;
    case "completed":
      reporter.step(`task completed on chain by enclave ${p.enclave}`);
      break;
    case "verified":
      reporter.step("result verified");
      for (const check of p.result.checks) reporter.detail(`✓ ${check}`);
      break;
  }
}

export function shortId(id: bigint): string {
  const hex = id.toString(16).padStart(64, "0");
  return `0x${hex.slice(0, 8)}…${hex.slice(-4)}`;
}

