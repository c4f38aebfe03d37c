/**
 * A network file names a whole Cloister network in one place: its chain id,
 * endpoints, contracts and the policy manifest its clients should verify
 * enclaves against. `cloister devnet up` writes `<dir>/network.json` (and the
 * manifest beside it, `<dir>/manifest.json`, with its digest in the network
 * file) once every process serves; every command that talks to a network
 * reads it with `--network`. A network file of an older devnet names a
 * policy file (`"policy": "policy.json"`) instead: it still loads, converted
 * to a manifest. The format is in docs/architecture.md ("Network file").
 */
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isAddress, type Address, type Hex } from "viem";
import { z } from "zod";
import { loadManifestFile, manifestDigest, manifestFromJson, type LoadedManifest, type Manifest } from "../attestation/manifest/index.ts";
import { devUserCount, testMnemonic } from "../chain/dev-accounts.ts";
import type { Deployment } from "../chain/deployment.ts";
import { CloisterError } from "../util/base-error.ts";

export const networkFileName = "network.json";
export const networkManifestFileName = "manifest.json";
/** The policy file an older devnet wrote beside its network file; removed when a devnet writes its manifest. */
export const legacyNetworkPolicyFileName = "policy.json";

export class NetworkFileError extends CloisterError<"NETWORK_FILE"> {
  constructor(message: string) {
    super("NETWORK_FILE", message);
  }
}

const address = z.string().refine((s) => isAddress(s, { strict: false }), { message: "is not a 20-byte hex address" }).transform((s) => s as Address);
const httpUrl = z.string().refine((s) => /^https?:\/\/[^/]/.test(s) && URL.canParse(s), { message: "is not an http(s) URL" });
const wsUrl = z.string().refine((s) => /^wss?:\/\/[^/]/.test(s) && URL.canParse(s), { message: "is not a ws(s) URL" });

const networkFileSchema = z.strictObject({
  version: z.literal(1),
  chainId: z.number().int().positive(),
  endpoints: z.strictObject({ rpc: httpUrl, ws: wsUrl.optional(), ipfs: httpUrl, cas: httpUrl.optional(), vault: httpUrl.optional() }),
  deployment: z.strictObject({
    registry: address,
    market: address,
    collaborations: address.optional(),
    vault: address.optional(),
    deployBlock: z.string().regex(/^\d+$/, "is not a block number in decimal"),
    testToken: address.optional(),
    pipelines: address.optional(),
    grants: address.optional(),
  }),
  /** The policy manifest: its file's path (relative to the network file) or the manifest itself. */
  manifest: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  /** manifestDigest of the manifest; a reader refuses a manifest that does not have it. */
  manifestDigest: z.string().regex(/^0x[0-9a-f]{64}$/, "is not a 0x-prefixed SHA-256 digest in lowercase hex").optional(),
  /** Written by older devnets instead of `manifest`: a policy file's path or the policy itself, converted to a manifest when read. */
  policy: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  /** Present on a development network only: its funded, publicly known user accounts. */
  devAccounts: z.strictObject({ mnemonic: z.string(), path: z.string(), count: z.number().int().positive() }).optional(),
}).refine((n) => (n.manifest === undefined) !== (n.policy === undefined), {
  path: ["manifest"],
  message: "a network file names its policy manifest (\"manifest\") or, written by an older devnet, its policy file (\"policy\"): exactly one of them",
});

export type NetworkFileJson = z.input<typeof networkFileSchema>;

export interface NetworkFile {
  /** Where it was read from. */
  path: string;
  chainId: number;
  endpoints: { rpc: string; ws?: string; ipfs: string; cas?: string; vault?: string };
  deployment: Deployment;
  testToken?: Address;
  /** The network's policy manifest; every client's policy comes from it (policyForRole). */
  manifest: Manifest;
  manifestDigest: Hex;
  /** The network file names an old policy file, converted to this manifest. */
  convertedFromPolicyFile: boolean;
  /** How many user accounts the network funds from the test mnemonic (0: not a development network). */
  devAccounts: number;
}

/** What a running devnet serves: its chain, endpoints and contracts. */
export interface DevnetEndpoints {
  chainId: number;
  rpcUrl: string;
  /** The chain's JSON-RPC over WebSocket (same port as rpcUrl), with eth_subscribe("newHeads"). */
  wsUrl: string;
  ipfsUrl: string;
  casUrl: string;
  deployment: Deployment;
  /** The devnet's TestToken (anyone may mint), of which each user account got testTokenPerAccount. */
  testToken: Address;
  /** The vault hosts' gateway (src/host/vault-http.ts), when the devnet runs vault clusters. */
  vaultUrl?: string;
}

export interface DevnetDescription extends DevnetEndpoints {
  /** The policy manifest the devnet's clients should use, written beside the network file. */
  manifest: Manifest;
}

/** Writes `<dir>/manifest.json` and then `<dir>/network.json` (atomically: a reader never sees half a file). */
export async function writeNetworkFile(dir: string, d: DevnetDescription): Promise<string> {
  await writeAtomically(join(dir, networkManifestFileName), d.manifest);
  await rm(join(dir, legacyNetworkPolicyFileName), { force: true });
  const json: NetworkFileJson = {
    version: 1,
    chainId: d.chainId,
    endpoints: { rpc: d.rpcUrl, ws: d.wsUrl, ipfs: d.ipfsUrl, cas: d.casUrl, ...(d.vaultUrl ? { vault: d.vaultUrl } : {}) },
    deployment: {
      registry: d.deployment.registry, market: d.deployment.market, deployBlock: d.deployment.deployBlock.toString(), testToken: d.testToken,
      ...(d.deployment.pipelines ? { pipelines: d.deployment.pipelines } : {}),
      ...(d.deployment.grants ? { grants: d.deployment.grants } : {}),
      ...(d.deployment.collaborations ? { collaborations: d.deployment.collaborations } : {}),
      ...(d.deployment.vault ? { vault: d.deployment.vault } : {}),
    },
    manifest: networkManifestFileName,
    manifestDigest: manifestDigest(d.manifest),
    devAccounts: { mnemonic: testMnemonic, path: "m/44'/60'/0'/0/<index>", count: devUserCount },
  };
  const path = join(dir, networkFileName);
  await writeAtomically(path, json);
  return path;
}

async function writeAtomically(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

/** Reads a network file, or `<dir>/network.json` when given a directory. */
export async function readNetworkFile(fileOrDir: string): Promise<NetworkFile> {
  const path = await networkFilePath(fileOrDir);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new NetworkFileError(`no network file at ${path}; 'cloister devnet up --dir ${dirname(path)}' writes it once the devnet is ready`);
    }
    throw new NetworkFileError(`network file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = networkFileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${["network", ...i.path.map(String)].join(".")}: ${i.message}`);
    throw new NetworkFileError(`network file ${path} is not usable:\n${issues.join("\n")}\n(see docs/architecture.md, "Network file")`);
  }
  const n = parsed.data;
  return {
    path,
    chainId: n.chainId,
    endpoints: n.endpoints,
    deployment: {
      chainId: n.chainId, registry: n.deployment.registry, market: n.deployment.market, deployBlock: BigInt(n.deployment.deployBlock),
      ...(n.deployment.pipelines ? { pipelines: n.deployment.pipelines } : {}),
      ...(n.deployment.grants ? { grants: n.deployment.grants } : {}),
      ...(n.deployment.collaborations ? { collaborations: n.deployment.collaborations } : {}),
      ...(n.deployment.vault ? { vault: n.deployment.vault } : {}),
    },
    ...(n.deployment.testToken ? { testToken: n.deployment.testToken } : {}),
    ...(await manifestOf(n, path)),
    devAccounts: n.devAccounts && n.devAccounts.mnemonic === testMnemonic ? Math.min(n.devAccounts.count, devUserCount) : 0,
  };
}

async function networkFilePath(fileOrDir: string): Promise<string> {
  try {
    return (await stat(fileOrDir)).isDirectory() ? join(fileOrDir, networkFileName) : fileOrDir;
  } catch {
    throw new NetworkFileError(`no network file or devnet directory at '${fileOrDir}'; give a devnet's directory (e.g. .cloister/devnet) or its network.json`);
  }
}

async function manifestOf(n: { manifest?: string | Record<string, unknown>; manifestDigest?: string; policy?: string | Record<string, unknown> }, networkPath: string): Promise<Pick<NetworkFile, "manifest" | "manifestDigest" | "convertedFromPolicyFile">> {
  const source = (n.manifest ?? n.policy)!;
  let loaded: LoadedManifest;
  try {
    loaded = typeof source === "string" ? await loadManifestFile(isAbsolute(source) ? source : resolve(dirname(networkPath), source)) : manifestFromJson(source);
  } catch (error) {
    throw new NetworkFileError(`the policy manifest of network file ${networkPath} is unusable: ${(error as Error).message}`);
  }
  if (n.manifestDigest !== undefined && n.manifestDigest !== loaded.digest) {
    throw new NetworkFileError(
      `the policy manifest of network file ${networkPath} has digest ${loaded.digest}, but the network file names ${n.manifestDigest}: ` +
        "the manifest was changed after the network file was written; restore it, or restart the devnet to write both again",
    );
  }
  return { manifest: loaded.manifest, manifestDigest: loaded.digest, convertedFromPolicyFile: loaded.convertedFromPolicyFile };
}
