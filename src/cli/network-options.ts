/**
 * The flags that point a command at a running network instead of an embedded
 * one: `--rpc <url> --ipfs <url>` (and `--ws <url>`: every chain request over that WebSocket, and new
 * heads by push), where the contracts are
 * (`--deployment <file>` or `--cas <url>`), whose enclaves to trust
 * (`--policy <file>` or `--sim-pki <dir>`; default the strict production
 * policy) and who pays (`--key <hex>` or CLOISTER_PRIVATE_KEY; on a local
 * devnet the development requester key).
 */
import { isHex, type Hex } from "viem";
import { loadPolicyFile, productionPolicy, type Policy } from "../attestation/policy.ts";
import { connectToNetwork, type RemoteNetwork, type RemoteNetworkOptions } from "../devnet/remote-client.ts";
import { localNetworkPolicy } from "../devnet/network-policy.ts";
import { UsageError } from "./errors.ts";
import { networkOptionsUsage } from "./usage.ts";

export const networkParseOptions = {
  rpc: { type: "string" },
  ws: { type: "string" },
  ipfs: { type: "string" },
  cas: { type: "string" },
  deployment: { type: "string" },
  policy: { type: "string" },
  "sim-pki": { type: "string" },
  key: { type: "string" },
} as const;

export interface NetworkFlags {
  rpc?: string;
  ws?: string;
  ipfs?: string;
  cas?: string;
  deployment?: string;
  policy?: string;
  "sim-pki"?: string;
  key?: string;
}

/** True when the flags ask for a running network. */
export function wantsRemoteNetwork(flags: NetworkFlags): boolean {
  return Object.keys(networkParseOptions).some((name) => flags[name as keyof NetworkFlags] !== undefined);
}

export async function connectFromFlags(flags: NetworkFlags): Promise<RemoteNetwork> {
  if (!flags.rpc || !flags.ipfs) throw new UsageError(`a running network needs both --rpc <url> and --ipfs <url>\n\n${networkOptionsUsage}`);
  if (flags.cas && flags.deployment) throw new UsageError("give either --cas or --deployment, not both");
  if (!flags.cas && !flags.deployment) throw new UsageError("a running network needs its contract addresses: --cas <url> (a devnet's attestation service) or --deployment <file>");
  for (const [flag, url] of [["--rpc", flags.rpc], ["--ipfs", flags.ipfs], ["--cas", flags.cas]] as const) {
    if (url !== undefined && !URL.canParse(url)) throw new UsageError(`${flag} takes a URL such as http://127.0.0.1:8545, got '${url}'`);
  }
  if (flags.ws !== undefined && !/^wss?:\/\/[^/]/.test(flags.ws)) throw new UsageError(`--ws takes the chain's WebSocket URL such as ws://127.0.0.1:8545, got '${flags.ws}'`);
  const key = flags.key ?? process.env.CLOISTER_PRIVATE_KEY;
  if (key !== undefined && (!isHex(key) || key.length !== 66)) throw new UsageError("the requester key (--key or CLOISTER_PRIVATE_KEY) must be 0x followed by 64 hex digits");
  const deployment: RemoteNetworkOptions["deployment"] = flags.cas ? { casUrl: flags.cas } : { file: flags.deployment! };
  return connectToNetwork({ rpcUrl: flags.rpc, wsUrl: flags.ws, ipfsUrl: flags.ipfs, deployment, policy: await policyFrom(flags), privateKey: key as Hex | undefined });
}

/** The client's attestation policy: --policy, else --sim-pki (or `fallbackSimPki`), else the strict production policy. */
export async function policyFrom(flags: Pick<NetworkFlags, "policy" | "sim-pki">, fallbackSimPki?: string): Promise<Policy> {
  if (flags.policy && flags["sim-pki"]) throw new UsageError("give either --policy or --sim-pki, not both");
  if (flags.policy) {
    try {
      return await loadPolicyFile(flags.policy);
    } catch (error) {
      throw new UsageError(`policy file '${flags.policy}' is unusable: ${(error as Error).message}`);
    }
  }
  const simPki = flags["sim-pki"] ?? fallbackSimPki;
  return simPki ? (await localNetworkPolicy(simPki)).policy : productionPolicy();
}
