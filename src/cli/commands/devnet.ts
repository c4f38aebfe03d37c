/**
 * `cloister devnet up [--nodes N] [--dir D] [--port P] [--json] [limits]`: runs the
 * multi-process local network until Ctrl-C or SIGTERM, then stops every
 * process it started. Progress goes to stderr (on a terminal); the endpoints
 * go to stdout (one JSON object with --json), printed once every endpoint
 * answers and the network file is written, ending with the word `ready`.
 *
 * `cloister devnet accounts [--json] [--show-private-keys]`: the ten funded
 * test accounts, the same on every devnet.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { devUserKeys } from "../../chain/dev-accounts.ts";
import { localAccount } from "../../crypto/secp256k1-account.ts";
import type { MultiProcessDevnet } from "../../devnet/multi-process.ts";
import type { HostEvent } from "../../host/log.ts";
import type { NodeProcessMessage } from "../../host/main.ts";
import { OriginAllowList } from "../../util/cors.ts";
import { parsePositiveInt } from "../args.ts";
import { UsageError } from "../errors.ts";
import { printJson, stderrReporter, type Reporter } from "../output.ts";
import { devnetUsage } from "../usage.ts";

export async function devnetCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "accounts") return accountsCommand(rest);
  if (sub !== "up") throw new UsageError(`unknown devnet command '${sub ?? ""}'\n\n${devnetUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      nodes: { type: "string" },
      clusters: { type: "string" },
      dir: { type: "string", default: ".cloister/devnet" },
      port: { type: "string", default: "8545" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      "rpc-max-batch": { type: "string" },
      "rpc-max-response-bytes": { type: "string" },
      "ipfs-max-upload-bytes": { type: "string" },
      "ipfs-max-uploads-in-flight-bytes": { type: "string" },
      "allow-origin": { type: "string", multiple: true },
      "no-dashboard": { type: "boolean", default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`devnet up takes no positional arguments\n\n${devnetUsage}`);
  const nodes = parsePositiveInt(values.nodes, "--nodes", 2);
  const vaultClusters = values.clusters === undefined ? 0 : parsePositiveInt(values.clusters, "--clusters", 0);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535 - 4 - nodes) throw new UsageError(`--port takes a port number (0 picks free ports), got '${values.port}'`);
  const dataDir = resolve(values.dir);
  const optionalInt = (flag: keyof typeof values) => {
    const value = values[flag];
    return typeof value === "string" ? parsePositiveInt(value, `--${flag}`, 0) : undefined;
  };
  const rpcLimits = { maxBatchItems: optionalInt("rpc-max-batch"), maxResponseBytes: optionalInt("rpc-max-response-bytes") };
  const ipfsLimits = { maxUploadBytes: optionalInt("ipfs-max-upload-bytes"), maxUploadBytesInFlight: optionalInt("ipfs-max-uploads-in-flight-bytes") };
  const reporter = stderrReporter({ quiet: values.quiet });
  let allowedOrigins: OriginAllowList;
  try {
    allowedOrigins = new OriginAllowList(values["allow-origin"] ?? []);
  } catch (error) {
    throw new UsageError(`--allow-origin: ${(error as Error).message}`);
  }

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
      vaultClusters,
      rpcLimits,
      ipfsLimits,
      allowedOrigins,
      dashboard: !values["no-dashboard"],
      onDashboardError: (e) => process.stderr.write(`cloister: the dashboard did not start (${e.message}); the devnet runs without it\n`),
      onStep: (m) => reporter.detail(m),
      onNodeMessage: (i, m) => reportNodeMessage(reporter, i, m),
      hostEvents: shownHostEvents,
      // An error: shown in a pipe too.
      onNodeExit: (i, code, signal) => process.stderr.write(`cloister: node ${i} exited unexpectedly (code ${code}, signal ${signal}); see ${dataDir}/nodes/${i}/host.log\n`),
    });
    // Last: whoever waits for 'ready' may use every endpoint and the network file at once.
    if (values.json) printJson(describe(devnet));
    else process.stdout.write(endpointsText(devnet, values.dir));
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
    ready: true,
    networkFile: d.networkFile,
    dataDir: d.dataDir,
    chainId: d.chainId,
    rpcUrl: d.rpcUrl,
    wsUrl: d.wsUrl,
    ipfsUrl: d.ipfsUrl,
    casUrl: d.casUrl,
    dashboardUrl: d.dashboardUrl,
    allowedOrigins: d.allowedOrigins.origins,
    simPkiDir: d.simPkiDir,
    measurement: d.measurement,
    deployment: {
      registry: d.deployment.registry, market: d.deployment.market, deployBlock: d.deployment.deployBlock.toString(), testToken: d.testToken,
      ...(d.deployment.grants ? { grants: d.deployment.grants } : {}),
    },
    nodes: d.nodes,
    ...(d.vaultUrl ? { vaultUrl: d.vaultUrl, vault: d.deployment.vault, clusters: d.vaultClusters.map((c) => ({ id: c.id.toString(), members: c.members })) } : {}),
    pid: process.pid,
  };
}

function endpointsText(d: MultiProcessDevnet, dirFlag: string): string {
  const lines = [
    `Cloister devnet up (SIMULATED TEE, development keys: local use only)`,
    `  chain RPC        ${d.rpcUrl}  (chain id ${d.chainId})`,
    `  chain WebSocket  ${d.wsUrl}  (eth_subscribe)`,
    `  IPFS (Kubo RPC)  ${d.ipfsUrl}`,
    `  attestation      ${d.casUrl}  (GET /deployment)`,
    ...(d.dashboardUrl ? [`  dashboard        ${d.dashboardUrl}  (read-only web console)`] : []),
    `  EnclaveRegistry  ${d.deployment.registry}`,
    `  TaskMarket       ${d.deployment.market}  (deploy block ${d.deployment.deployBlock})`,
    `  test token       ${d.testToken}  (accounts 0..9 hold some: cloister devnet accounts)`,
    ...d.nodes.map((n) => `  node ${n.index}           pid ${n.pid}, enclave pid ${n.enclavePid}, signer ${n.signer} ${n.teeType}${n.simulated ? " SIMULATED" : ""}${n.httpUrl ? `, metrics ${n.httpUrl}/metrics` : ""}`),
    ...(d.vaultUrl ? [`  SecretVault      ${d.deployment.vault}  (gateway ${d.vaultUrl})`, ...d.vaultClusters.map((c) => `  vault cluster ${c.id}  ${c.members.join(" ")}`)] : []),
    `  data dir         ${d.dataDir}`,
    `  network file     ${d.networkFile}`,
    `Run a task (Ctrl-C stops the devnet):`,
    `  cloister task run examples/echo.js --input <file> --network ${dirFlag} --account 0`,
    `ready`,
  ];
  return `${lines.join("\n")}\n`;
}

async function accountsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: "boolean", default: false }, "show-private-keys": { type: "boolean", default: false } },
  });
  const showKeys = values["show-private-keys"];
  const accounts = devUserKeys().map((key, index) => ({ index, address: localAccount(key).address, ...(showKeys ? { privateKey: key } : {}) }));
  if (values.json) {
    printJson({ accounts, ...(showKeys ? { warning: publicKeysWarning } : {}) });
    return 0;
  }
  const lines = [
    "Funded on every devnet with native currency and the test token (use one with --account <index>):",
    "  index  address",
    ...accounts.map((a) => `  ${String(a.index).padStart(5)}  ${a.address}${a.privateKey ? `  ${a.privateKey}` : ""}`),
    showKeys ? `Warning: ${publicKeysWarning}` : "Their private keys are public test keys ('--show-private-keys' prints them).",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

const publicKeysWarning =
  "these are the standard test mnemonic's keys, known to everyone: use them on a local devnet only, and never send anything of value to these addresses on a real network";

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
