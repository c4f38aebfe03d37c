/** The network's contract addresses, kept beside its chain data so a restarted network finds them again. */
import { readFile, writeFile } from "node:fs/promises";
import { deploymentFromJson, DeploymentFormatError, deploymentToJson, type Deployment } from "./deployment.ts";

export async function readDeployment(path: string): Promise<Deployment | undefined> {
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
    throw new DeploymentFormatError(`${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return deploymentFromJson(json, path);
}

export async function writeDeployment(path: string, d: Deployment): Promise<void> {
  await writeFile(path, `${JSON.stringify(deploymentToJson(d), null, 2)}\n`);
}
