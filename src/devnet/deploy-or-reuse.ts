/**
 * A local network's contracts: the ones recorded in its deployment file when
 * they are still on its chain (a restarted network), else freshly deployed
 * and recorded.
 */
import type { Address } from "viem";
import { getCode } from "viem/actions";
import type { WriterClient } from "../chain/clients.ts";
import { deployCloister, deployCollaborations, deployPipelines } from "../chain/deploy.ts";
import { readDeployment, writeDeployment } from "../chain/deployment-file.ts";
import type { Deployment } from "../chain/deployment.ts";

export async function deployOrReuse(deployer: WriterClient, options: { chainId: number; attester: Address; path: string }): Promise<Deployment> {
  const saved = await readDeployment(options.path);
  if (saved && saved.chainId === options.chainId) {
    const code = await getCode(deployer, { address: saved.market });
    // A deployment file from before the vault was deployed is redeployed, so every devnet has one.
    if (code && code !== "0x" && saved.vault) {
      // A network made before Pipelines and Collaborations were part of deployCloister: add them beside the others.
      if (saved.pipelines && saved.collaborations) return saved;
      const upgraded = {
        ...saved,
        pipelines: saved.pipelines ?? (await deployPipelines(deployer, saved.registry)).address,
        collaborations: saved.collaborations ?? (await deployCollaborations(deployer, saved.registry)).address,
      };
      await writeDeployment(options.path, upgraded);
      return upgraded;
    }
  }
  const deployed = await deployCloister(deployer, { attester: options.attester });
  const stored: Deployment = { chainId: deployed.chainId, registry: deployed.registry, market: deployed.market, deployBlock: deployed.deployBlock, collaborations: deployed.collaborations };
  if (deployed.pipelines) stored.pipelines = deployed.pipelines;
  if (deployed.grants) stored.grants = deployed.grants;
  if (deployed.vault) stored.vault = deployed.vault;
  await writeDeployment(options.path, stored);
  return stored;
}
