/**
 * The deployment the dashboard shows, read from a file the operator names: a
 * deployment file (deployment.json, or the attestation service's GET
 * /deployment) or a network file (network.json). Beyond the registry and the
 * market it keeps the optional contracts a network may have (collaborations,
 * pipelines, grants, vault, test token), so each dashboard section appears
 * once its contract is in the deployment. A file that is not one becomes a
 * DashboardDeploymentError naming the file and the field; the dashboard shows
 * that message as its error state instead of a blank page.
 */
import { readFile } from "node:fs/promises";
import { isAddress, type Address } from "viem";
import { z } from "zod";
import type { Deployment } from "../chain/deployment.ts";
import { CloisterError } from "../util/base-error.ts";

export class DashboardDeploymentError extends CloisterError<"DASHBOARD_DEPLOYMENT"> {
  constructor(message: string) {
    super("DASHBOARD_DEPLOYMENT", message);
  }
}

/** The optional contracts, by their Deployment key; the dashboard has a section for each. */
export const optionalContracts = ["testToken", "collaborations", "pipelines", "grants", "vault"] as const;
type OptionalContract = (typeof optionalContracts)[number];

export type DashboardDeployment = {
  chainId?: number;
  registry: Address;
  market: Address;
  /** Decimal, as in the deployment file. */
  deployBlock: string;
} & Partial<Record<OptionalContract, Address>>;

const address = z.string().refine((s) => isAddress(s, { strict: false }), { message: "is not a 20-byte hex address" }).transform((s) => s as Address);
const blockNumber = z.union([z.string().regex(/^\d+$/, "is not a decimal block number"), z.number().int().nonnegative().transform(String)]);
const contracts = z.looseObject({
  chainId: z.number().int().positive().optional(),
  registry: address,
  market: address,
  deployBlock: blockNumber,
  ...Object.fromEntries(optionalContracts.map((k) => [k, address.optional()])),
});
const networkFile = z.looseObject({ chainId: z.number().int().positive(), deployment: contracts });

/** Parses a deployment or network document; `source` names it in errors. */
export function parseDashboardDeployment(json: unknown, source: string): DashboardDeployment {
  const isNetworkFile = typeof json === "object" && json !== null && "deployment" in json && typeof (json as { deployment: unknown }).deployment === "object";
  const parsed = isNetworkFile ? networkFile.safeParse(json) : contracts.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join(".") || "(top level)";
    throw new DashboardDeploymentError(
      `${source} is not a Cloister deployment: ${where} ${issue.message}. A deployment file holds chainId, registry, market and deployBlock (a devnet writes deployment.json and network.json in its data dir).`,
    );
  }
  const d = (isNetworkFile ? { chainId: (parsed.data as z.infer<typeof networkFile>).chainId, ...(parsed.data as z.infer<typeof networkFile>).deployment } : parsed.data) as Record<string, unknown>;
  const out: DashboardDeployment = { registry: d.registry as Address, market: d.market as Address, deployBlock: String(d.deployBlock) };
  if (typeof d.chainId === "number") out.chainId = d.chainId;
  for (const key of optionalContracts) if (typeof d[key] === "string") out[key] = d[key] as Address;
  return out;
}

export async function readDashboardDeployment(path: string): Promise<DashboardDeployment> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new DashboardDeploymentError(`cannot read the deployment file ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DashboardDeploymentError(`the deployment file ${path} is not JSON: ${(error as Error).message}`);
  }
  return parseDashboardDeployment(json, path);
}

/** A running network's Deployment (with whatever optional addresses it has) in the dashboard's form. */
export function dashboardDeploymentOf(d: Deployment, extra: Partial<Record<OptionalContract, Address>> = {}): DashboardDeployment {
  const out: DashboardDeployment = { chainId: d.chainId, registry: d.registry, market: d.market, deployBlock: d.deployBlock.toString() };
  const all = { ...(d as unknown as Record<string, unknown>), ...extra };
  for (const key of optionalContracts) if (typeof all[key] === "string") out[key] = all[key] as Address;
  return out;
}
