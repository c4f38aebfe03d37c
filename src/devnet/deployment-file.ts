/** The network's contract addresses, kept beside its chain data so a restarted network finds them again. */
import { readFile, writeFile } from "node:fs/promises";
import type { Address } from "viem";
import type { CloisterDeployment } from "../chain/deploy.ts";

export type StoredDeployment = Pick<CloisterDeployment, "chainId" | "registry" | "market" | "deployBlock">;

export async function readDeployment(path: string): Promise<StoredDeployment | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const raw = JSON.parse(text) as { chainId: number; registry: Address; market: Address; deployBlock: string };
  return { chainId: raw.chainId, registry: raw.registry, market: raw.market, deployBlock: BigInt(raw.deployBlock) };
}

export async function writeDeployment(path: string, d: StoredDeployment): Promise<void> {
  await writeFile(path, `${JSON.stringify({ chainId: d.chainId, registry: d.registry, market: d.market, deployBlock: d.deployBlock.toString() }, null, 2)}\n`);
}
