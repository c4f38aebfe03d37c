/** The network's contract addresses, kept beside its chain data so a restarted network finds them again. */
import { readFile, writeFile } from "node:fs/promises";
import type { Address } from "viem";
import { z } from "zod";
import type { CloisterDeployment } from "./deploy.ts";
import { addressSchema as address } from "../protocol/schemas.ts";

export type StoredDeployment = Pick<CloisterDeployment, "chainId" | "registry" | "market" | "deployBlock">;

const storedDeploymentSchema = z
  .object({
    chainId: z.number().int().positive(),
    registry: address,
    market: address,
    deployBlock: z.string().regex(/^\d+$/, "must be a decimal block number"),
  })
  .strict();

/** A deployment file that is not what writeDeployment writes: names the file and the field. */
export class DeploymentFileError extends Error {
  readonly code = "DEPLOYMENT_FILE_INVALID";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DeploymentFileError";
  }
}

export async function readDeployment(path: string): Promise<StoredDeployment | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DeploymentFileError(`${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = storedDeploymentSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DeploymentFileError(`${path}: ${issue.path.join(".") || "(top level)"} ${issue.message}; it must hold chainId, registry, market and deployBlock as a devnet writes them`);
  }
  const raw = parsed.data;
  return { chainId: raw.chainId, registry: raw.registry as Address, market: raw.market as Address, deployBlock: BigInt(raw.deployBlock) };
}

export async function writeDeployment(path: string, d: StoredDeployment): Promise<void> {
  await writeFile(path, `${JSON.stringify({ chainId: d.chainId, registry: d.registry, market: d.market, deployBlock: d.deployBlock.toString() }, null, 2)}\n`);
}
