import type { Address, Hex } from "viem";
import { collaborationsAbi, collaborationsBytecode } from "./abi/Collaborations.ts";
import { enclaveRegistryAbi, enclaveRegistryBytecode } from "./abi/EnclaveRegistry.ts";
import { grantsAbi, grantsBytecode } from "./abi/Grants.ts";
import { pipelinesAbi, pipelinesBytecode } from "./abi/Pipelines.ts";
import { secretVaultAbi, secretVaultBytecode } from "./abi/SecretVault.ts";
import { taskMarketAbi, taskMarketBytecode } from "./abi/TaskMarket.ts";
import { testTokenAbi, testTokenBytecode } from "./abi/TestToken.ts";
import type { WriterClient } from "./clients.ts";
import type { Deployment } from "./deployment.ts";
import { CloisterError } from "../util/base-error.ts";

/** A deployment just made: its addresses and what deploying them cost. */
export interface CloisterDeployment extends Deployment {
  collaborations: Address;
  gasUsed: { registry: bigint; market: bigint; grants?: bigint; collaborations: bigint; vault: bigint };
}

export class DeploymentError extends CloisterError<"DEPLOYMENT_FAILED"> {
  constructor(message: string) {
    super("DEPLOYMENT_FAILED", message);
  }
}

export interface DeployOptions {
  /** Account granted ATTESTER_ROLE (the attestation service). */
  attester: Address;
  /** Account granted DEFAULT_ADMIN_ROLE on the registry and owning the market; defaults to the deployer. */
  admin?: Address;
  /** The market's per-task operator deposit in wei (default defaultTaskDeposit). */
  taskDeposit?: bigint;
}

/** 0.001 ether: what an operator risks per accepted task by default. */
export const defaultTaskDeposit = 10n ** 15n;

async function deployed(client: WriterClient, what: string, hash: Hex) {
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) {
    throw new DeploymentError(`deploying ${what} failed in transaction ${hash}; check the deployer's balance and the chain's hardfork (cancun or later)`);
  }
  return { address: receipt.contractAddress, receipt };
}

/** Deploys EnclaveRegistry, then TaskMarket, Pipelines, Grants, Collaborations and SecretVault bound to it, waiting for each receipt. */
export async function deployCloister(client: WriterClient, options: DeployOptions): Promise<CloisterDeployment> {
  const admin = options.admin ?? client.account.address;
  const registry = await deployed(
    client,
    "EnclaveRegistry",
    await client.deployContract({
      abi: enclaveRegistryAbi,
      bytecode: enclaveRegistryBytecode,
      args: [admin, options.attester],
    }),
  );
  const market = await deployed(
    client,
    "TaskMarket",
    await client.deployContract({ abi: taskMarketAbi, bytecode: taskMarketBytecode, args: [registry.address, admin, options.taskDeposit ?? defaultTaskDeposit] }),
  );
  const pipelines = await deployed(client, "Pipelines", await client.deployContract({ abi: pipelinesAbi, bytecode: pipelinesBytecode, args: [registry.address] }));
  const grants = await deployGrants(client, registry.address);
  const collaborations = await deployCollaborations(client, registry.address);
  const vault = await deploySecretVault(client, { registry: registry.address, admin });
  return {
    chainId: client.chain.id,
    registry: registry.address,
    market: market.address,
    vault: vault.address,
    deployBlock: market.receipt.blockNumber,
    pipelines: pipelines.address,
    grants: grants.address,
    collaborations: collaborations.address,
    gasUsed: { registry: registry.receipt.gasUsed, market: market.receipt.gasUsed, grants: grants.gasUsed, collaborations: collaborations.gasUsed, vault: vault.gasUsed },
  };
}

/** Deploys Collaborations (clean-room collaborations) bound to `registry`; deployCloister calls it too. */
export async function deployCollaborations(client: WriterClient, registry: Address): Promise<{ address: Address; gasUsed: bigint }> {
  const { address, receipt } = await deployed(client, "Collaborations", await client.deployContract({ abi: collaborationsAbi, bytecode: collaborationsBytecode, args: [registry] }));
  return { address, gasUsed: receipt.gasUsed };
}

/**
 * Deploys Grants (owner grants for direct manipulations) bound to `registry`; deployCloister deploys one with
 * every network (Deployment.grants).
 */
export async function deployGrants(client: WriterClient, registry: Address): Promise<{ address: Address; gasUsed: bigint }> {
  const { address, receipt } = await deployed(client, "Grants", await client.deployContract({ abi: grantsAbi, bytecode: grantsBytecode, args: [registry] }));
  return { address, gasUsed: receipt.gasUsed };
}

/** Deploys Pipelines (pipeline registry and run anchors) bound to `registry`; not yet part of deployCloister. */
export async function deployPipelines(client: WriterClient, registry: Address): Promise<{ address: Address; gasUsed: bigint }> {
  const { address, receipt } = await deployed(client, "Pipelines", await client.deployContract({ abi: pipelinesAbi, bytecode: pipelinesBytecode, args: [registry] }));
  return { address, gasUsed: receipt.gasUsed };
}

/** Deploys a TestToken (anyone may mint: tests and local networks only) and returns its address. */
export async function deployTestToken(client: WriterClient, name = "Cloister Test Token", symbol = "CTT"): Promise<Address> {
  const hash = await client.deployContract({ abi: testTokenAbi, bytecode: testTokenBytecode, args: [name, symbol] });
  return (await deployed(client, "TestToken", hash)).address;
}

export interface VaultDeployOptions {
  /** The EnclaveRegistry whose active enclaves may be cluster members. */
  registry: Address;
  /** Account granted DEFAULT_ADMIN_ROLE; defaults to the deployer. */
  admin?: Address;
  /** Account granted CLUSTER_ADMIN_ROLE (creates clusters, replaces members); defaults to the admin. */
  clusterAdmin?: Address;
}

/** Deploys a SecretVault bound to `registry` (deployCloister calls it; the cluster admin defaults to `admin`). */
export async function deploySecretVault(client: WriterClient, options: VaultDeployOptions): Promise<{ address: Address; gasUsed: bigint }> {
  const admin = options.admin ?? client.account.address;
  const hash = await client.deployContract({ abi: secretVaultAbi, bytecode: secretVaultBytecode, args: [options.registry, admin, options.clusterAdmin ?? admin] });
  const { address, receipt } = await deployed(client, "SecretVault", hash);
  return { address, gasUsed: receipt.gasUsed };
}
