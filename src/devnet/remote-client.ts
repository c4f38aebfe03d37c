/**
 * A requester's SDK client on a network reached only through its endpoints:
 * any Ethereum JSON-RPC URL and any Kubo RPC URL (a `cloister devnet up`
 * network or real nodes). The contract addresses come from a deployment
 * file or from the attestation service's GET /deployment; the attestation
 * policy is always the caller's own. With the chain's WebSocket URL too, the
 * client sends every chain request over that one connection and learns of
 * completions from new heads (eth_subscribe) instead of by polling.
 */
import type { Hex } from "viem";
import type { Manifest } from "../attestation/manifest/index.ts";
import { casHttpClient } from "../cas/http-client.ts";
import { chainDefinition, createWriterClient, type WriterClient } from "../chain/clients.ts";
import { localAccount } from "../crypto/secp256k1-account.ts";
import { defaultLocalChainId } from "../chain/local-chain.ts";
import { newHeadSource } from "../chain/new-heads.ts";
import { openWebSocketProvider } from "../chain/ws-provider.ts";
import { devPrivateKeys } from "../chain/dev-accounts.ts";
import { CloisterClient } from "../sdk/client.ts";
import type { BlobStore } from "../storage/blob-store.ts";
import { openKuboStore } from "../storage/kubo-store.ts";
import { readDeployment } from "../chain/deployment-file.ts";
import { DevnetError } from "./errors.ts";
import type { Deployment } from "../chain/deployment.ts";

export interface RemoteNetworkOptions {
  rpcUrl: string;
  /**
   * The chain's JSON-RPC over WebSocket (e.g. ws://127.0.0.1:8545): every chain request goes over it instead
   * of rpcUrl, and completions are looked for on each new head; polling stays the fallback.
   */
  wsUrl?: string;
  ipfsUrl: string;
  /** Where the contract addresses come from: the deployment itself, a deployment file, or an attestation service URL. */
  deployment: Deployment | { file: string } | { casUrl: string };
  /** The caller's own policy manifest (the network file's, --policy, or the production manifest). */
  manifest: Manifest;
  /**
   * The requester's private key. When omitted, the well-known development
   * requester key is used, and only on a local devnet (chain id 31337 at a
   * loopback URL); anywhere else it is an error.
   */
  privateKey?: Hex;
  /** Receipt polling (default 100 ms) and completion polling (default: the SDK's, 20 ms); with automining a receipt is there at the first look. */
  pollingIntervalMs?: number;
}

export interface RemoteNetwork {
  client: CloisterClient;
  writer: WriterClient;
  store: BlobStore;
  deployment: Deployment;
  close(): Promise<void>;
}

export async function connectToNetwork(options: RemoteNetworkOptions): Promise<RemoteNetwork> {
  const deployment = await resolveDeployment(options.deployment);
  const privateKey = options.privateKey ?? devRequesterKeyFor(options.rpcUrl, deployment.chainId);
  // Its connection errors need no report: requests fail as transient and are retried, and it keeps reconnecting.
  const webSocket = options.wsUrl === undefined ? undefined : openWebSocketProvider({ url: options.wsUrl });
  try {
    const writer = createWriterClient({
      endpoint: webSocket ? { webSocket } : { rpcUrl: options.rpcUrl },
      chain: chainDefinition(deployment.chainId, options.rpcUrl),
      account: localAccount(privateKey),
      pollingInterval: options.pollingIntervalMs ?? 100,
    });
    const chainId = await writer.getChainId();
    if (chainId !== deployment.chainId) {
      throw new DevnetError(`the chain at ${options.wsUrl ?? options.rpcUrl} has chain id ${chainId}, but the deployment is for chain ${deployment.chainId}; use the deployment of that chain`);
    }
    const store = openKuboStore(options.ipfsUrl);
    // Its errors need no report: while it is not live the client polls.
    const newHeads = webSocket && newHeadSource({ webSocket });
    const client = new CloisterClient({ writer, deployment, store, manifest: options.manifest, pollIntervalMs: options.pollingIntervalMs, newHeads });
    return {
      client,
      writer,
      store,
      deployment,
      async close() {
        await newHeads?.close();
        await webSocket?.close();
        await store.close();
      },
    };
  } catch (error) {
    await webSocket?.close();
    throw error;
  }
}

async function resolveDeployment(source: RemoteNetworkOptions["deployment"]): Promise<Deployment> {
  if ("file" in source) {
    const read = await readDeployment(source.file);
    if (!read) throw new DevnetError(`no deployment file at ${source.file}; a devnet writes it to <dir>/deployment.json`);
    return read;
  }
  if ("casUrl" in source) return casHttpClient(source.casUrl).deployment();
  return source;
}

function devRequesterKeyFor(rpcUrl: string, chainId: number): Hex {
  const host = new URL(rpcUrl).hostname;
  const loopback = host === "127.0.0.1" || host === "localhost" || host === "[::1]";
  if (!loopback || chainId !== defaultLocalChainId) {
    throw new DevnetError(`no requester key given for chain ${chainId} at ${rpcUrl}; set CLOISTER_PRIVATE_KEY (or, with the CLI on a devnet, pass --account <i>)`);
  }
  return devPrivateKeys(0).requester;
}
