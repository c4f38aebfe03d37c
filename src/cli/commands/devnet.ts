/**
 * `cloister devnet up [--nodes N] [--dir D] [--port P] [--json] [limits]`: runs the
 * multi-process local network until Ctrl-C or SIGTERM, then stops every
 * process it started. Progress goes to stderr; the endpoints go to stdout
 * (one JSON object with --json), printed once everything is up.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { MultiProcessDevnet } from "../../devnet/multi-process.ts";
import type { HostEvent } from "../../host/log.ts";
import type { NodeProcessMessage } from "../../host/main.ts";
import { parsePositiveInt } from "../args.ts";
import { UsageError } from "../errors.ts";
import { printJson, stderrReporter, type Reporter } from "../output.ts";
import { devnetUsage } from "../usage.ts";

export async function devnetCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "up") throw new UsageError(`unknown devnet command '${sub ?? ""}'\n\n${devnetUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      nodes: { type: "string" },
      dir: { type: "string", default: ".cloister/devnet" },
      port: { type: "string", default: "8545" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      "rpc-max-batch": { type: "string" },
      "rpc-max-response-bytes": { type: "string" },
      "ipfs-max-upload-bytes": { type: "string" },
      "ipfs-max-uploads-in-flight-bytes": { type: "string" },
    },
  });
  if (positionals.length > 0) throw new UsageError(`devnet up takes no positional arguments\n\n${devnetUsage}`);
  const nodes = parsePositiveInt(values.nodes, "--nodes", 2);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535 - 3 - nodes) throw new UsageError(`--port takes a port number (0 picks free ports), got '${values.port}'`);
  const dataDir = resolve(values.dir);
  const optionalInt = (flag: keyof typeof values) => {
    const value = values[flag];
    return typeof value === "string" ? parsePositiveInt(value, `--${flag}`, 0) : undefined;
  };
  const rpcLimits = { maxBatchItems: optionalInt("rpc-max-batch"), maxResponseBytes: optionalInt("rpc-max-response-bytes") };
  const ipfsLimits = { maxUploadBytes: optionalInt("ipfs-max-upload-bytes"), maxUploadBytesInFlight: optionalInt("ipfs-max-uploads-in-flight-bytes") };
  const reporter = stderrReporter({ quiet: values.quiet });

  // Signals that arrive during start-up stop the network as soon as it is up.
  let stopRequested = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stopRequested = true;
    wake();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    reporter.step(`starting a devnet with ${nodes} node(s) in ${dataDir}`);
    // Loaded once the arguments are known good: the chain stack takes a while to load.
    const { startMultiProcessDevnet } = await import("../../devnet/multi-process.ts");
    const devnet = await startMultiProcessDevnet({
      dataDir,
      nodes,
      port,
      rpcLimits,
      ipfsLimits,
      onStep: (m) => reporter.detail(m),
      onNodeMessage: (i, m) => reportNodeMessage(reporter, i, m),
      hostEvents: shownHostEvents,
      onNodeExit: (i, code, signal) => reporter.step(`node ${i} exited unexpectedly (code ${code}, signal ${signal}); see ${dataDir}/nodes/${i}/host.log`),
    });
    if (values.json) printJson(describe(devnet));
    else process.stdout.write(endpointsText(devnet));
    if (!stopRequested) await new Promise<void>((r) => (wake = r));
    reporter.step("stopping the devnet");
    await devnet.close();
    reporter.step(`stopped; 'cloister devnet up --dir ${values.dir}' resumes it`);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function describe(d: MultiProcessDevnet) {
  return {
    dataDir: d.dataDir,
    chainId: d.chainId,
    rpcUrl: d.rpcUrl,
    wsUrl: d.wsUrl,
    ipfsUrl: d.ipfsUrl,
    casUrl: d.casUrl,
    simPkiDir: d.simPkiDir,
    measurement: d.measurement,
    deployment: { registry: d.deployment.registry, market: d.deployment.market, deployBlock: d.deployment.deployBlock.toString() },
    nodes: d.nodes,
    pid: process.pid,
  };
}

function endpointsText(d: MultiProcessDevnet): string {
  const lines = [
    `Cloister devnet up (SIMULATED TEE, development keys: local use only)`,
    `  chain RPC        ${d.rpcUrl}  (chain id ${d.chainId})`,
    `  chain WebSocket  ${d.wsUrl}  (eth_subscribe)`,
    `  IPFS (Kubo RPC)  ${d.ipfsUrl}`,
    `  attestation      ${d.casUrl}  (GET /deployment)`,
    `  EnclaveRegistry  ${d.deployment.registry}`,
    `  TaskMarket       ${d.deployment.market}  (deploy block ${d.deployment.deployBlock})`,
    ...d.nodes.map((n) => `  node ${n.index}           pid ${n.pid}, enclave pid ${n.enclavePid}, signer ${n.signer} ${n.teeType}${n.simulated ? " SIMULATED" : ""}${n.httpUrl ? `, metrics ${n.httpUrl}/metrics` : ""}`),
    `  data dir         ${d.dataDir}`,
    `Run a task:`,
    `  cloister task run examples/echo.js --input <file> --rpc ${d.rpcUrl} --ws ${d.wsUrl} --ipfs ${d.ipfsUrl} --cas ${d.casUrl} --sim-pki ${d.simPkiDir}`,
    `Ctrl-C stops the devnet.`,
  ];
  return `${lines.join("\n")}\n`;
}

/** The node events `devnet up` shows (reportNodeMessage); nodes report no others to it. */
const shownHostEvents: HostEvent["type"][] = ["task-accepted", "task-completed", "task-failed", "task-refused"];

function reportNodeMessage(reporter: Reporter, node: number, m: NodeProcessMessage): void {
  if (m.event !== "host") return;
  const e = m.host;
  switch (e.type) {
    case "task-accepted":
    case "task-completed":
      reporter.detail(`node ${node}: ${e.type} ${e.taskId} (gas ${e.gasUsed}${e.batchSize > 1 ? `, one transaction for ${e.batchSize} tasks` : ""})`);
      break;
    case "task-failed":
      reporter.detail(`node ${node}: task-failed ${e.taskId} ${e.code}: ${e.message}`);
      break;
    case "task-refused":
      reporter.detail(`node ${node}: task-refused ${e.taskId} ${e.reason} (${e.code}: ${e.message})`);
      break;
    default:
      break;
  }
}
