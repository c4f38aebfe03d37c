/**
 * The flags that point a command at a running network instead of an embedded
 * one. `--network <devnet dir | network file>` (or CLOISTER_NETWORK) names it
 * all at once; the single flags (`--rpc --ws --ipfs`, `--cas | --deployment`,
 * `--policy | --sim-pki`) name any other chain and IPFS node, and override
 * the network file's values. Who signs is `--account <i>` on a devnet or
 * CLOISTER_PRIVATE_KEY (signer.ts). What the client trusts is one policy
 * manifest: --policy <file>, else --sim-pki's, else the network file's, else
 * the strict production manifest.
 */
import { productionManifest, type Manifest } from "../attestation/manifest/index.ts";
import type { NetworkFile } from "../devnet/network-file.ts";
import { connectToNetwork, type RemoteNetwork, type RemoteNetworkOptions } from "../devnet/remote-client.ts";
import { localNetworkManifest } from "../devnet/network-policy.ts";
import { UsageError } from "./errors.ts";
import { manifestFileOrUsage } from "./manifest-option.ts";
import { loadNetwork, namedNetwork } from "./network-file.ts";
import { signerKey } from "./signer.ts";
import { networkOptionsUsage } from "./usage.ts";

export const networkParseOptions = {
  network: { type: "string" },
  rpc: { type: "string" },
  ws: { type: "string" },
  ipfs: { type: "string" },
  cas: { type: "string" },
  deployment: { type: "string" },
  policy: { type: "string" },
  "sim-pki": { type: "string" },
} as const;

export const signerParseOptions = {
  account: { type: "string" },
} as const;

export interface NetworkFlags {
  network?: string;
  rpc?: string;
  ws?: string;
  ipfs?: string;
  cas?: string;
  deployment?: string;
  policy?: string;
  "sim-pki"?: string;
}

/** A running network as the flags (and CLOISTER_NETWORK) name it; undefined when they name none. */
export interface NamedNetwork {
  file?: NetworkFile;
  rpcUrl: string;
  wsUrl?: string;
  ipfsUrl: string;
  deployment: RemoteNetworkOptions["deployment"];
  manifest: Manifest;
}

/** True when the flags, or CLOISTER_NETWORK unless `ignoreEnv`, ask for a running network. */
export function wantsRemoteNetwork(flags: NetworkFlags, ignoreEnv = false): boolean {
  return namedNetwork(flags.network, ignoreEnv) !== undefined || Object.keys(networkParseOptions).some((name) => flags[name as keyof NetworkFlags] !== undefined);
}

export async function resolveNetwork(flags: NetworkFlags): Promise<NamedNetwork> {
  const named = namedNetwork(flags.network);
  const file = named === undefined ? undefined : await loadNetwork(named, flags.network === undefined);
  const rpcUrl = flags.rpc ?? file?.endpoints.rpc;
  const ipfsUrl = flags.ipfs ?? file?.endpoints.ipfs;
  if (!rpcUrl || !ipfsUrl) throw new UsageError(`a running network needs --network <devnet dir>, or both --rpc <url> and --ipfs <url>\n\n${networkOptionsUsage}`);
  // A single --rpc for another chain does not keep the file's WebSocket of the old one.
  const wsUrl = flags.ws ?? (flags.rpc === undefined ? file?.endpoints.ws : undefined);
  if (flags.cas && flags.deployment) throw new UsageError("give either --cas or --deployment, not both");
  for (const [flag, url] of [["--rpc", flags.rpc], ["--ipfs", flags.ipfs], ["--cas", flags.cas]] as const) {
    if (url !== undefined && !URL.canParse(url)) throw new UsageError(`${flag} takes a URL such as http://127.0.0.1:8545, got '${url}'`);
  }
  if (flags.ws !== undefined && !/^wss?:\/\/[^/]/.test(flags.ws)) throw new UsageError(`--ws takes the chain's WebSocket URL such as ws://127.0.0.1:8545, got '${flags.ws}'`);
  const deployment: RemoteNetworkOptions["deployment"] | undefined = flags.cas ? { casUrl: flags.cas } : flags.deployment ? { file: flags.deployment } : file?.deployment;
  if (!deployment) throw new UsageError("a running network needs its contract addresses: --network <devnet dir>, --cas <url> (a devnet's attestation service) or --deployment <file>");
  const manifest = flags.policy || flags["sim-pki"] || !file ? await manifestFrom(flags) : file.manifest;
  return { ...(file ? { file } : {}), rpcUrl, ...(wsUrl ? { wsUrl } : {}), ipfsUrl, deployment, manifest };
}

/** Connects a requester's client to the named network, signing as --account or CLOISTER_PRIVATE_KEY. */
export async function connectFromFlags(flags: NetworkFlags & { account?: string }): Promise<RemoteNetwork> {
  const n = await resolveNetwork(flags);
  const privateKey = signerKey(flags.account, n.file);
  return connectToNetwork({ rpcUrl: n.rpcUrl, wsUrl: n.wsUrl, ipfsUrl: n.ipfsUrl, deployment: n.deployment, manifest: n.manifest, privateKey });
}

/** The client's policy manifest: --policy (a manifest or an old policy file), else --sim-pki (or `fallbackSimPki`), else the strict production manifest. */
export async function manifestFrom(flags: Pick<NetworkFlags, "policy" | "sim-pki">, fallbackSimPki?: string): Promise<Manifest> {
  if (flags.policy && flags["sim-pki"]) throw new UsageError("give either --policy or --sim-pki, not both");
  if (flags.policy) return (await manifestFileOrUsage(flags.policy)).manifest;
  const simPki = flags["sim-pki"] ?? fallbackSimPki;
  return simPki ? (await localNetworkManifest(simPki)).manifest : productionManifest();
}
