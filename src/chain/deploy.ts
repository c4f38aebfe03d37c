import type { Address, Hex } from "viem";
import { enclaveRegistryAbi, enclaveRegistryBytecode } from "./abi/EnclaveRegistry.ts";
import { taskMarketAbi, taskMarketBytecode } from "./abi/TaskMarket.ts";
import type { WriterClient } from "./clients.ts";

export interface CloisterDeployment {
  chainId: number;
  registry: Address;
  market: Address;
  /** Block of the market's deployment: where event crawlers start. */
  deployBlock: bigint;
  gasUsed: { registry: bigint; market: bigint };
}

export class DeploymentError extends Error {
  readonly code = "DEPLOYMENT_FAILED";
  constructor(message: string) {
    super(message);
    this.name = "DeploymentError";
  }
}

export interface DeployOptions {
  /** Account granted ATTESTER_ROLE (the attestation service). */
  attester: Address;
  /** Account granted DEFAULT_ADMIN_ROLE; defaults to the deployer. */
  admin?: Address;
}

async function deployed(client: WriterClient, what: string, hash: Hex) {
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) {
    throw new DeploymentError(`deploying ${what} failed in transaction ${hash}; check the deployer's balance and the chain's hardfork (cancun or later)`);
  }
  return { address: receipt.contractAddress, receipt };
}

/** Deploys EnclaveRegistry, then TaskMarket bound to it, waiting for each receipt. */
export async function deployCloister(client: WriterClient, options: DeployOptions): Promise<CloisterDeployment> {
  const registry = await deployed(
    client,
    "EnclaveRegistry",
    await client.deployContract({
      abi: enclaveRegistryAbi,
      bytecode: enclaveRegistryBytecode,
      args: [options.admin ?? client.account.address, options.attester],
    }),
  );
  const market = await deployed(
    client,
    "TaskMarket",
    await client.deployContract({ abi: taskMarketAbi, bytecode: taskMarketBytecode, args: [registry.address] }),
  );
  return {
    chainId: client.chain.id,
    registry: registry.address,
    market: market.address,
    deployBlock: market.receipt.blockNumber,
    gasUsed: { registry: registry.receipt.gasUsed, market: market.receipt.gasUsed },
  };
}
