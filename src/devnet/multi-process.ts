/**
 * A local Cloister network as separate OS processes, reached only through
 * standard network APIs:
 *
 *   this process   chain (EDR + block journal) behind a JSON-RPC server,
 *                  the embedded IPFS store behind a Kubo RPC server,
 *                  the attestation service behind its HTTP API
 *   node i         src/host/main.ts, its own process, talking to the three
 *                  servers over HTTP (and to the chain over WebSocket too, for
 *                  new heads), with its enclave in a child process
 *
 * Everything binds to 127.0.0.1. State lives in the data dir with the same
 * layout as the embedded network's, so a restart on the same dir resumes
 * the chain (journal replay), the store, the deployment and the enclaves'
 * sealed identities.
 *
 * For fault tests, a running network can kill and restart one node, and stop
 * and start its chain RPC server or its IPFS node on the same port.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hex } from "viem";
import { manifestDigest, type Manifest } from "../attestation/manifest/index.ts";
import type { Policy } from "../attestation/policy.ts";
import { startCasHttpServer } from "../cas/http-server.ts";
import { AttestationService } from "../cas/service.ts";
import { createWriterClient } from "../chain/clients.ts";
import { devUserKeys } from "../chain/dev-accounts.ts";
import { localAccount } from "../crypto/secp256k1-account.ts";
import { startLocalChain, type LocalChain } from "../chain/local-chain.ts";
import type { Eip1193Provider } from "../chain/eip1193.ts";
import { startChainRpcServer, type ChainRpcServer, type ChainRpcServerOptions } from "../chain/rpc-server.ts";
import type { HostEvent } from "../host/log.ts";
import type { NodeProcessMessage } from "../host/main.ts";
import { StorageError, type BlobStore } from "../storage/blob-store.ts";
import { openHeliaStore, type HeliaStore } from "../storage/helia-store.ts";
import { startKuboRpcServer, type KuboRpcServer, type KuboRpcServerOptions } from "../storage/kubo-rpc-server.ts";
import { deployOrReuse } from "./deploy-or-reuse.ts";
import { startDevnetVault } from "./vault-devnet.ts";
import type { VaultClusterInfo } from "./vault-network.ts";
import { DevnetError } from "./errors.ts";
import { networkFileName, writeNetworkFile, type DevnetEndpoints } from "./network-file.ts";
import { localNetworkManifest } from "./network-policy.ts";
import { checkEndpointsAnswer } from "./readiness.ts";
import { OriginAllowList } from "../util/cors.ts";
import { startDashboardServer, type DashboardServer } from "./dashboard-server.ts";
import { dashboardDeploymentOf } from "./dashboard-deployment.ts";
import { deployOrReuseTestToken } from "./test-token.ts";

const NODE_MAIN = fileURLToPath(new URL("../host/main.ts", import.meta.url));

export interface MultiProcessDevnetOptions {
  dataDir: string;
  /** Node daemons to start (default 2). */
  nodes?: number;
  /**
   * The chain RPC listens on `port`, Kubo RPC on `port + 1`, the attestation service on `port + 2`,
   * node i's health and metrics on `port + 3 + i`; 0 (default) picks free ports.
   */
  port?: number;
  /** How often each node polls the chain for new tasks while it gets no new heads over WebSocket (default 100 ms). */
  pollIntervalMs?: number;
  /** Tasks each node runs at once (default 4 per core, defaultRunConcurrency). */
  nodeConcurrency?: number;
  /** How long a node may take to get its enclave registered (default 60 s). */
  nodeStartTimeoutMs?: number;
  /** Progress of the network's own setup. */
  onStep?: (message: string) => void;
  /** Every message a node process reports (its host events included). */
  onNodeMessage?: (node: number, message: NodeProcessMessage) => void;
  /**
   * The host event types the nodes report to onNodeMessage (default: all). Each is one IPC message per
   * node and task, so a devnet that shows only some asks for only those; every event is still in the
   * node's host.log.
   */
  hostEvents?: readonly HostEvent["type"][];
  /** The chain RPC server's caps on request bodies, batches and replies (defaults in rpc-server.ts). */
  rpcLimits?: Pick<ChainRpcServerOptions, "maxBodyBytes" | "maxBatchItems" | "maxResponseBytes">;
  /** The IPFS node's caps on uploads, each and all in flight (defaults in kubo-rpc-server.ts). */
  ipfsLimits?: Pick<KuboRpcServerOptions, "maxUploadBytes" | "maxUploadBytesInFlight">;
  /** Vault clusters of 5 vault enclave processes, supervised by this process (issue 15; default 0: none). */
  vaultClusters?: number;
  /**
   * Web origins (besides the dashboard's own) whose pages may call the chain RPC and IPFS API (CORS);
   * the devnet adds its dashboard's origins to this list once the dashboard listens.
   */
  allowedOrigins?: OriginAllowList;
  /** Serve the dashboard (web/) on `port + 3 + nodes` (a free port with port 0), or on the given port. */
  dashboard?: boolean | { port: number };
  /** The dashboard could not start; the devnet runs on without it (dashboardUrl null). */
  onDashboardError?: (error: Error) => void;
  /** A node process exited while the network was running (not during close). */
  onNodeExit?: (node: number, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface DevnetNode {
  index: number;
  pid: number;
  enclavePid: number;
  signer: string;
  operator: string;
  measurement: string;
  teeType: string;
  simulated: boolean;
  /** Where the node serves GET /healthz and GET /metrics. */
  httpUrl: string | null;
}

export interface MultiProcessDevnet extends DevnetEndpoints {
  dataDir: string;
  /** `<dataDir>/network.json`, written once every endpoint answered (removed again on close). */
  networkFile: string;
  /** Where the network's simulated vendor PKI lives. */
  simPkiDir: string;
  /** The network's policy manifest, written to `<dataDir>/manifest.json` and named by the network file. */
  manifest: Manifest;
  /** The manifest's task-role policy. */
  policy: Policy;
  measurement: string;
  nodes: DevnetNode[];
  /** Blocks replayed from the data dir at start (0 for a new network). */
  replayedBlocks: number;
  /** The vault clusters this devnet runs (empty without --clusters). */
  vaultClusters: VaultClusterInfo[];
  /** The dashboard's URL, when it was asked for (options.dashboard). */
  dashboardUrl: string | null;
  /** The origins the chain RPC and IPFS API serve to web pages (the dashboard's and options.allowedOrigins). */
  allowedOrigins: OriginAllowList;
  /** The well-known development requester key (local use only). */
  requesterKey: Hex;
  /** The chain in this process, reachable while its JSON-RPC server is stopped. */
  chainProvider: Eip1193Provider;
  /** Kills node `index`'s daemon and enclave processes with SIGKILL, as a crash would, and waits until they are gone. */
  killNode(index: number): Promise<void>;
  /** Starts node `index` again on its data dir (after killNode); resolves once it is registered, and updates `nodes[index]`. */
  restartNode(index: number): Promise<DevnetNode>;
  /** Stops the chain's JSON-RPC server (open connections are dropped); the chain itself keeps running. */
  stopChainRpc(): Promise<void>;
  /** Serves the chain's JSON-RPC API again, on the same port. */
  startChainRpc(): Promise<void>;
  /** Stops the Kubo RPC server and closes the IPFS store. */
  stopIpfs(): Promise<void>;
  /** Opens the IPFS store again from the data dir and serves it on the same port. */
  startIpfs(): Promise<void>;
  /** Stops every node process (and its enclave), then the servers, chain and store. */
  close(): Promise<void>;
}

export async function startMultiProcessDevnet(options: MultiProcessDevnetOptions): Promise<MultiProcessDevnet> {
  const step = options.onStep ?? (() => {});
  const { dataDir } = options;
  const nodeCount = options.nodes ?? 2;
  if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new DevnetError(`a devnet needs at least one node, got ${nodeCount}`);
  const port = (offset: number) => (options.port ? options.port + offset : 0);
  const allowedOrigins = options.allowedOrigins ?? new OriginAllowList();
  await mkdir(dataDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    })());

  try {
    const chainDir = join(dataDir, "chain");
    // A chain's operator accounts are fixed at creation; a resumed chain keeps its own.
    const created = !existsSync(join(chainDir, "chain.json"));
    const chain = await startLocalChain({ dataDir: chainDir, operators: created ? Math.max(3, nodeCount) : undefined });
    cleanups.push(() => chain.close());
    if (chain.accounts.operators.length < nodeCount) {
      throw new DevnetError(`the chain in ${chainDir} has ${chain.accounts.operators.length} operator accounts, too few for ${nodeCount} nodes; start with --nodes ${chain.accounts.operators.length} or a new data dir`);
    }
    let rpc: ChainRpcServer | undefined = await startChainRpcServer({ ...options.rpcLimits, provider: chain.provider, port: port(0), allowedOrigins });
    const { url: rpcUrl, wsUrl, port: rpcPort } = rpc;
    const stopChainRpc = async () => {
      await rpc?.close();
      rpc = undefined;
    };
    cleanups.push(stopChainRpc);
    step(`chain ${chain.chainId} (Hardhat EDR)${chain.replayedBlocks ? `, ${chain.replayedBlocks} blocks restored` : ""}: JSON-RPC ${rpcUrl}, WebSocket ${wsUrl}`);

    const ipfsDir = join(dataDir, "ipfs");
    let store: HeliaStore | undefined = await openHeliaStore(ipfsDir);
    let kubo: KuboRpcServer | undefined = await startKuboRpcServer({ ...options.ipfsLimits, store, port: port(1), allowedOrigins });
    const { url: ipfsUrl, port: ipfsPort } = kubo;
    const stopIpfs = async () => {
      await kubo?.close();
      kubo = undefined;
      await store?.close();
      store = undefined;
    };
    cleanups.push(stopIpfs);
    step(`IPFS (embedded store in ${ipfsDir}): Kubo RPC ${ipfsUrl}`);
    // The attestation service reads evidence from whichever store is open (the IPFS node may be restarted).
    const openStore = (): HeliaStore => {
      if (!store) throw new StorageError("STORAGE_UNREACHABLE", "the devnet's IPFS node is stopped; start it again (startIpfs)");
      return store;
    };
    const currentStore: BlobStore = {
      put: (bytes) => openStore().put(bytes),
      putMany: (blobs) => openStore().putMany(blobs),
      get: (cid, getOptions) => openStore().get(cid, getOptions),
      has: (cid) => openStore().has(cid),
      close: async () => {},
    };

    const writer = (account: LocalChain["accounts"]["deployer"]) => createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account });
    const deployment = await deployOrReuse(writer(chain.accounts.deployer), { chainId: chain.chainId, attester: chain.accounts.attester.address, path: join(dataDir, "deployment.json") });
    step(`contracts: EnclaveRegistry ${deployment.registry}, TaskMarket ${deployment.market}, SecretVault ${deployment.vault ?? "none"} (from block ${deployment.deployBlock})`);
    const users = devUserKeys().map((k) => localAccount(k).address);
    const testToken = await deployOrReuseTestToken(writer(chain.accounts.deployer), { chainId: chain.chainId, path: join(dataDir, "test-token.json"), recipients: users });
    step(
      chain.fundedUsers > 0
        ? `user accounts 0..${users.length - 1} (cloister devnet accounts): native currency and test token ${testToken}`
        : `test token ${testToken}; this chain predates the funded user accounts (start a new --dir to get them)`,
    );

    const simPkiDir = join(dataDir, "sim-tee");
    const { manifest, policy, measurement } = await localNetworkManifest(simPkiDir);
    const service = new AttestationService({ writer: writer(chain.accounts.attester), registry: deployment.registry, store: currentStore, manifest });
    const cas = await startCasHttpServer({ service, deployment, port: port(2) });
    cleanups.push(() => cas.close());
    step(`attestation service: ${cas.url} (policy manifest ${manifestDigest(manifest)}: simulated root in ${simPkiDir}, SIMULATED TEE; measurement ${measurement})`);

    const nodeTuning = [
      ...(options.pollIntervalMs === undefined ? [] : ["--poll-ms", String(options.pollIntervalMs)]),
      ...(options.nodeConcurrency === undefined ? [] : ["--concurrency", String(options.nodeConcurrency)]),
      ...(options.hostEvents === undefined ? [] : ["--report-events", options.hostEvents.join(",")]),
    ];
    // Everything runs on 127.0.0.1: each enclave's relay may dial loopback, and listens there for peers.
    const relayOnLoopback = ["--relay-private", "--relay-bind", "127.0.0.1"];
    const processes: NodeProcess[] = [];
    cleanups.push(() => Promise.all(processes.map((p) => p.stop())).then(() => {}));
    const startNode = (i: number) =>
      spawnNode(i, {
        args: ["--rpc", rpcUrl, "--ws", wsUrl, "--ipfs", ipfsUrl, "--cas", cas.url, "--data-dir", join(dataDir, "nodes", String(i)), "--sim-pki", simPkiDir, "--http-port", String(port(3 + i)), ...relayOnLoopback, ...nodeTuning],
        operatorKey: chain.privateKeys.operators[i]!,
        onMessage: options.onNodeMessage,
        onExit: (code, signal) => {
          if (!closing) options.onNodeExit?.(i, code, signal);
        },
      });
    for (let i = 0; i < nodeCount; i++) processes.push(startNode(i));
    const timeoutMs = options.nodeStartTimeoutMs ?? 60_000;
    const nodes = await Promise.all(processes.map((p) => p.ready(timeoutMs)));
    const processOf = (index: number): NodeProcess => {
      const p = processes[index];
      if (!p) throw new DevnetError(`the devnet has no node ${index}; its nodes are 0..${processes.length - 1}`);
      return p;
    };
    for (const n of nodes) step(`node ${n.index}: pid ${n.pid}, enclave pid ${n.enclavePid}, signer ${n.signer} ${n.teeType}${n.simulated ? " SIMULATED" : ""}, operator ${n.operator}${n.httpUrl ? `, health ${n.httpUrl}/healthz` : ""}`);

    const vault = options.vaultClusters ? await startDevnetVault({ chain, rpcUrl, deployment, dataDir, simPkiDir, clusters: options.vaultClusters, port: port(3 + nodeCount), step }) : undefined;
    if (vault) cleanups.push(() => vault.close());
    await checkEndpointsAnswer({ chainId: chain.chainId, rpcUrl, wsUrl, ipfsUrl, casUrl: cas.url, nodeUrls: nodes.map((n) => n.httpUrl) });
    const endpoints: DevnetEndpoints = { chainId: chain.chainId, rpcUrl, wsUrl, ipfsUrl, casUrl: cas.url, deployment, testToken, ...(vault ? { vaultUrl: vault.url } : {}) };
    let dashboard: DashboardServer | undefined;
    if (options.dashboard) {
      const dashboardPort = typeof options.dashboard === "object" ? options.dashboard.port : port(3 + nodeCount + (vault ? 1 : 0));
      // The network works without its console: a dashboard that cannot start (no bundle and no Vite to build one, a taken port) is reported, not fatal.
      try {
        dashboard = await startDashboardServer({
          rpcUrl,
          wsUrl,
          ipfsUrl,
          deployment: dashboardDeploymentOf(deployment, { testToken }),
          deploymentSource: join(dataDir, "deployment.json"),
          manifest,
          nodeUrls: nodes.flatMap((n) => (n.httpUrl ? [n.httpUrl] : [])),
          port: dashboardPort,
          onStep: step,
        });
        const started = dashboard;
        cleanups.push(() => started.close());
        for (const origin of started.origins) allowedOrigins.add(origin);
        step(`dashboard ${started.url} (read-only; the chain RPC and IPFS API serve its origin)`);
      } catch (error) {
        options.onDashboardError?.(error as Error);
        step(`no dashboard: ${(error as Error).message}`);
      }
    }
    const networkFile = await writeNetworkFile(dataDir, { ...endpoints, manifest });
    // First to go on close: a stopped devnet's endpoints answer no more.
    cleanups.push(() => rm(join(dataDir, networkFileName), { force: true }));
    step(`network file ${networkFile}`);

    return {
      ...endpoints,
      dataDir,
      networkFile,
      simPkiDir,
      manifest,
      policy,
      measurement,
      nodes,
      replayedBlocks: chain.replayedBlocks,
      vaultClusters: vault?.clusters ?? [],
      dashboardUrl: dashboard?.url ?? null,
      allowedOrigins,
      requesterKey: chain.privateKeys.requester,
      chainProvider: chain.provider,
      killNode: (index) => processOf(index).kill(),
      async restartNode(index) {
        if (processOf(index).running) throw new DevnetError(`node ${index} is still running; kill it first (killNode)`);
        const restarted = startNode(index);
        processes[index] = restarted;
        const node = await restarted.ready(timeoutMs);
        nodes[index] = node;
        return node;
      },
      stopChainRpc,
      async startChainRpc() {
        rpc ??= await startChainRpcServer({ ...options.rpcLimits, provider: chain.provider, port: rpcPort, allowedOrigins });
      },
      stopIpfs,
      async startIpfs() {
        store ??= await openHeliaStore(ipfsDir);
        kubo ??= await startKuboRpcServer({ ...options.ipfsLimits, store, port: ipfsPort, allowedOrigins });
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

interface NodeProcess {
  ready(timeoutMs: number): Promise<DevnetNode>;
  /** SIGTERM, then SIGKILL after a grace period; the enclave is killed too if it outlived its host. */
  stop(): Promise<void>;
  /** SIGKILL to the node and its enclave at once, then waits for both to be gone. */
  kill(): Promise<void>;
  /** False once the node process has exited. */
  readonly running: boolean;
}

function spawnNode(
  index: number,
  o: { args: string[]; operatorKey: Hex; onMessage?: (node: number, message: NodeProcessMessage) => void; onExit: (code: number | null, signal: NodeJS.Signals | null) => void },
): NodeProcess {
  const child: ChildProcess = fork(NODE_MAIN, o.args, {
    env: { ...process.env, CLOISTER_OPERATOR_KEY: o.operatorKey },
    execArgv: ["--disable-warning=ExperimentalWarning"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    // Its own process group: a terminal's Ctrl-C reaches only the devnet, which stops the nodes in order
    // (otherwise each enclave would get SIGINT too and die under its running node). A node still
    // exits when the devnet's IPC channel closes, even if the devnet is killed.
    detached: true,
  });
  let node: DevnetNode | undefined;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      o.onExit(code, signal);
      resolve();
    });
  });
  child.on("error", () => {
    // Reported through "exit" and ready().
  });
  const readyMessage = new Promise<DevnetNode>((resolve) => {
    child.on("message", (raw) => {
      const message = raw as NodeProcessMessage;
      o.onMessage?.(index, message);
      if (message.event === "node-ready") {
        node = { index, pid: message.pid, enclavePid: message.enclavePid, signer: message.signer, operator: message.operator, measurement: message.measurement, teeType: message.teeType, simulated: message.simulated, httpUrl: message.httpUrl };
        resolve(node);
      }
    });
  });

  return {
    ready(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        readyMessage,
        exited.then(() => {
          throw new DevnetError(`node ${index} exited (code ${exitInfo?.code}, signal ${exitInfo?.signal}) before its enclave was registered; its error is above, its log in nodes/${index}/host.log`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new DevnetError(`node ${index} did not get its enclave registered within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    },
    async stop() {
      if (!exitInfo) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (node && isAlive(node.enclavePid)) {
        process.kill(node.enclavePid, "SIGKILL");
      }
    },
    async kill() {
      if (!exitInfo) child.kill("SIGKILL");
      const enclavePid = node?.enclavePid;
      if (enclavePid !== undefined && isAlive(enclavePid)) process.kill(enclavePid, "SIGKILL");
      await exited;
      // The enclave was the node's child and is reaped by init; a zombie still answers kill(pid, 0), so the wait is bounded.
      const until = Date.now() + 5_000;
      while (enclavePid !== undefined && isAlive(enclavePid) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    get running() {
      return exitInfo === undefined;
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
