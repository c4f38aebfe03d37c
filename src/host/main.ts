/**
 * The node daemon as its own OS process. It reaches the chain over JSON-RPC,
 * IPFS over the Kubo RPC API and the attestation service over HTTP, starts
 * its enclave as a child process, gets it registered and handles tasks.
 *
 *   node src/host/main.ts --rpc <url> --ipfs <url> --cas <url> --data-dir <dir> --sim-pki <dir>
 *                         [--ws <url>] [--deployment <file>] [--poll-ms <ms>] [--concurrency <n>] [--http-port <port>]
 *                         [--report-events all|<type>,<type>…]
 *                         [--relay-private] [--relay-bind <host>] [--relay-advertise <host>]
 *   env CLOISTER_OPERATOR_KEY=0x…   the operator account's private key (kept out of argv, which
 *                                   other users can read in the process list)
 *
 * Each flag may also come from the environment (CLOISTER_RPC_URL, CLOISTER_IPFS_URL,
 * CLOISTER_CAS_URL, CLOISTER_DATA_DIR, CLOISTER_SIM_PKI, CLOISTER_WS_URL). Without --deployment the
 * contract addresses come from the attestation service (GET /deployment).
 * With --http-port the node serves GET /healthz and GET /metrics on 127.0.0.1.
 * With --ws (the chain's JSON-RPC over WebSocket, e.g. ws://127.0.0.1:8545) the node
 * sends every chain request over that one connection instead of --rpc's HTTP, and
 * learns of new blocks by eth_subscribe("newHeads"), polling only as a safety net
 * while heads arrive; without it, or while the WebSocket is down, it polls every --poll-ms.
 *
 * It prints one JSON line per event on stdout ({"event":"node-ready",…} once
 * registered). Started with an IPC channel (fork), it also sends those events
 * to its parent and stops when the parent goes away. --report-events limits the
 * host events reported so to the types listed (default all; every event still
 * goes to host.log): a devnet that shows only accepts and completions spares
 * itself and its nodes a message per node per task seen. SIGINT/SIGTERM stop it
 * cleanly (exit 0): the watcher stops, the enclave process is closed.
 *
 * The enclave's network relay (src/host/net-relay.ts) is on: outbound streams
 * go to public addresses only unless --relay-private (CLOISTER_RELAY_PRIVATE=1)
 * also allows loopback and private networks (a devnet on one machine, a private
 * deployment); inbound listeners bind --relay-bind (CLOISTER_RELAY_BIND, default
 * 127.0.0.1) on an ephemeral port, and peers are told --relay-advertise
 * (CLOISTER_RELAY_ADVERTISE, default the bind address). Each listener the
 * enclave opens is reported as {"event":"enclave-listening",…}.
 * Exit 1: it could not start or its enclave died; exit 2: bad configuration.
 */
import { isIP } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isHex, type Hex } from "viem";
import { casHttpClient } from "../cas/http-client.ts";
import { chainDefinition, createWriterClient } from "../chain/clients.ts";
import { localAccount } from "../crypto/secp256k1-account.ts";
import { newHeadSource } from "../chain/new-heads.ts";
import { openWebSocketProvider } from "../chain/ws-provider.ts";
import { readDeployment } from "../chain/deployment-file.ts";
import { startEnclave, type EnclaveClient } from "../enclave/client.ts";
import { relayHostSchema } from "../enclave/net/frames.ts";
import { createNetRelay } from "./net-relay.ts";
import { listenerWaiters } from "./collab-driver.ts";
import { openKuboStore } from "../storage/kubo-store.ts";
import { hostEventTypes, isHostEventType, type HostEvent } from "./log.ts";
import { NodeCapacityError, runCapacity, type RunCapacity } from "./capacity.ts";
import { defaultNodeOffer, defaultRunConcurrency, NodeDaemon } from "./node-daemon.ts";
import { CloisterError } from "../util/base-error.ts";

export type NodeProcessMessage =
  | { event: "node-ready"; signer: string; operator: string; measurement: string; teeType: string; simulated: boolean; pid: number; enclavePid: number; httpUrl: string | null }
  /** `at`: when the node emitted it, in ms since the Unix epoch (fractional), so a parent can time stages without its IPC backlog. */
  | { event: "host"; host: HostEvent; at: number }
  /** The enclave listens for peers at host:port (the address the node advertises; peers are verified by attestation). */
  | { event: "enclave-listening"; listener: number; host: string; port: number }
  | { event: "node-stopped"; pid: number };

class ConfigError extends CloisterError<"NODE_CONFIG"> {
  constructor(message: string) {
    super("NODE_CONFIG", message);
  }
}

function config() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rpc: { type: "string", default: process.env.CLOISTER_RPC_URL },
      ipfs: { type: "string", default: process.env.CLOISTER_IPFS_URL },
      cas: { type: "string", default: process.env.CLOISTER_CAS_URL },
      ws: { type: "string", default: process.env.CLOISTER_WS_URL },
      "data-dir": { type: "string", default: process.env.CLOISTER_DATA_DIR },
      "sim-pki": { type: "string", default: process.env.CLOISTER_SIM_PKI },
      deployment: { type: "string" },
      "poll-ms": { type: "string", default: "100" },
      concurrency: { type: "string", default: String(defaultRunConcurrency()) },
      "http-port": { type: "string" },
      "report-events": { type: "string", default: "all" },
      "relay-private": { type: "boolean", default: process.env.CLOISTER_RELAY_PRIVATE === "1" },
      "relay-bind": { type: "string", default: process.env.CLOISTER_RELAY_BIND ?? "127.0.0.1" },
      "relay-advertise": { type: "string", default: process.env.CLOISTER_RELAY_ADVERTISE },
    },
  });
  const need = (name: Exclude<keyof typeof values, "relay-private">): string => {
    const value = values[name] as string | undefined;
    if (!value) throw new ConfigError(`--${name} is required (or its CLOISTER_* environment variable)`);
    return value;
  };
  const key = process.env.CLOISTER_OPERATOR_KEY;
  if (!key || !isHex(key) || key.length !== 66) throw new ConfigError("CLOISTER_OPERATOR_KEY must hold the operator's private key as 0x followed by 64 hex digits");
  const httpPort = values["http-port"] === undefined ? undefined : Number(values["http-port"]);
  if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535)) throw new ConfigError(`--http-port takes a port number (0 picks a free one), got '${values["http-port"]}'`);
  if (values.ws !== undefined && !/^wss?:\/\/[^/]/.test(values.ws)) throw new ConfigError(`--ws takes the chain's WebSocket URL such as ws://127.0.0.1:8545, got '${values.ws}'`);
  const reported = values["report-events"] === "all" ? undefined : values["report-events"].split(",").filter((t) => t !== "");
  const unknown = reported?.filter((t) => !isHostEventType(t));
  if (unknown?.length) throw new ConfigError(`--report-events takes "all" or a comma-separated list of ${hostEventTypes.join(", ")}; got unknown ${unknown.join(", ")}`);
  const positive = (name: "poll-ms" | "concurrency") => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`--${name} takes a positive integer, got '${values[name]}'`);
    return n;
  };
  const concurrency = positive("concurrency");
  let capacity: RunCapacity;
  try {
    capacity = runCapacity({ offers: [defaultNodeOffer], concurrency });
  } catch (error) {
    if (error instanceof NodeCapacityError) throw new ConfigError(error.message);
    throw error;
  }
  if (capacity.note) process.stderr.write(`cloister node: ${capacity.note}\n`);
  for (const name of ["relay-bind", "relay-advertise"] as const) {
    const host = values[name];
    // A name or an IP literal (the schema alone would let "host:port" pass as IPv6-ish).
    if (host !== undefined && !(relayHostSchema.safeParse(host).success && (isIP(host) !== 0 || !host.includes(":")))) throw new ConfigError(`--${name} takes a host name or IP address, got '${host}'`);
  }
  return {
    rpcUrl: need("rpc"),
    wsUrl: values.ws,
    ipfsUrl: need("ipfs"),
    casUrl: need("cas"),
    dataDir: need("data-dir"),
    simPkiDir: need("sim-pki"),
    deploymentFile: values.deployment,
    pollMs: positive("poll-ms"),
    concurrency: capacity.concurrency,
    httpPort,
    reportedEvents: reported === undefined ? undefined : new Set(reported),
    operatorKey: key as Hex,
    relay: { privateDestinations: values["relay-private"] ? ("allow" as const) : ("refuse" as const), bindHost: values["relay-bind"], advertiseHost: values["relay-advertise"] },
  };
}

function report(message: NodeProcessMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
  if (process.connected) process.send?.(message);
}

async function main(): Promise<number> {
  let cfg: ReturnType<typeof config>;
  try {
    cfg = config();
  } catch (error) {
    process.stderr.write(`cloister node: ${(error as Error).message}\n`);
    return 2;
  }
  const cas = casHttpClient(cfg.casUrl);
  const deployment = cfg.deploymentFile ? await readDeployment(cfg.deploymentFile) : await cas.deployment();
  if (!deployment) throw new ConfigError(`no deployment file at ${cfg.deploymentFile}`);
  const account = localAccount(cfg.operatorKey);
  // One report per outage: the WebSocket reconnects by itself, and requests fail (and are retried) meanwhile.
  let outageReported = false;
  const webSocket = cfg.wsUrl === undefined ? undefined : openWebSocketProvider({
    url: cfg.wsUrl,
    onError: (error) => {
      if (outageReported) return;
      outageReported = true;
      process.stderr.write(`cloister node: ${error.message}; chain requests fail and are retried, and the chain is polled every ${cfg.pollMs} ms, until it is back\n`);
    },
  });
  webSocket?.onConnection((connected) => {
    if (connected) outageReported = false;
  });
  const endpoint = webSocket ? { webSocket } : { rpcUrl: cfg.rpcUrl };
  const where = cfg.wsUrl ?? cfg.rpcUrl;
  const writer = createWriterClient({ endpoint, chain: chainDefinition(deployment.chainId, cfg.rpcUrl), account, pollingInterval: cfg.pollMs });
  const chainId = await writer.getChainId();
  if (chainId !== deployment.chainId) throw new ConfigError(`the chain at ${where} has chain id ${chainId}, the deployment is for ${deployment.chainId}; point --rpc and --ws at the deployment's chain`);
  const store = openKuboStore(cfg.ipfsUrl);
  const heads = webSocket && newHeadSource({
    webSocket,
    onError: (error) => process.stderr.write(`cloister node: ${error.message}\n`),
  });

  let stopping: Promise<void> | undefined;
  // Filled in as they start; a signal may arrive at any point.
  const started: { enclave?: EnclaveClient; node?: NodeDaemon } = {};
  const stop = () =>
    (stopping ??= (async () => {
      if (started.node) await started.node.stop();
      else await started.enclave?.close();
      await heads?.close();
      await webSocket?.close();
      await store.close();
    })());
  const stopped = new Promise<number>((resolve) => {
    const onSignal = () => void stop().then(() => resolve(0));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    process.once("disconnect", onSignal);
  });

  // The clean-room driver waits for the relay's report of the compute enclave's listener.
  const listeners = listenerWaiters();
  const relay = createNetRelay({
    privateDestinations: cfg.relay.privateDestinations,
    inbound: {
      bindHost: cfg.relay.bindHost,
      ...(cfg.relay.advertiseHost !== undefined ? { advertiseHost: cfg.relay.advertiseHost } : {}),
      onListening: (l) => {
        listeners.report(l);
        report({ event: "enclave-listening", ...l });
      },
    },
  });
  const enclave = await startEnclave({ dataDir: join(cfg.dataDir, "enclave"), attestation: { provider: "sim", pkiDir: cfg.simPkiDir }, relay });
  started.enclave = enclave;
  if (stopping) {
    // Stopped while the enclave was starting.
    await enclave.close();
    return stopped;
  }
  const died = enclave.exited.then(({ code, signal }) => {
    if (stopping) return new Promise<number>(() => {});
    process.stderr.write(`cloister node: the enclave process exited (code ${code}, signal ${signal}); stopping\n`);
    return stop().then(() => 1);
  });
  const node = new NodeDaemon({
    writer,
    deployment,
    store,
    enclave,
    attestationService: cas,
    dataDir: cfg.dataDir,
    pollIntervalMs: cfg.pollMs,
    newHeads: heads,
    concurrency: cfg.concurrency,
    http: cfg.httpPort === undefined ? undefined : { port: cfg.httpPort },
    collab: { nextListener: listeners.next },
    onEvent: (host) => {
      if (!cfg.reportedEvents || cfg.reportedEvents.has(host.type)) report({ event: "host", host, at: performance.timeOrigin + performance.now() });
    },
  });
  started.node = node;
  try {
    await node.start();
  } catch (error) {
    if (stopping) return stopped;
    await stop();
    throw error;
  }
  const id = enclave.identity;
  report({ event: "node-ready", signer: id.signer, operator: account.address, measurement: id.measurement, teeType: id.teeType, simulated: id.simulated, pid: process.pid, enclavePid: enclave.pid, httpUrl: node.httpUrl ?? null });
  return Promise.race([stopped, died]);
}

try {
  const code = await main();
  if (code === 0) report({ event: "node-stopped", pid: process.pid });
  process.exit(code);
} catch (error) {
  const e = error as Error & { code?: string };
  process.stderr.write(`cloister node: ${e.code ? `[${e.code}] ` : ""}${e.message}\n`);
  process.exit(e instanceof ConfigError ? 2 : 1);
}
