/**
 * What every page reads through: the configuration, the chain reader, the
 * deployment's contracts with their event logs, block times, and the serving
 * process's verification API. Pages compute their views from these.
 */
import type { Abi, Address } from "viem";
import { collaborationsAbi } from "../../src/chain/abi/Collaborations.ts";
import { enclaveRegistryAbi } from "../../src/chain/abi/EnclaveRegistry.ts";
import { grantsAbi } from "../../src/chain/abi/Grants.ts";
import { pipelinesAbi } from "../../src/chain/abi/Pipelines.ts";
import { secretVaultAbi } from "../../src/chain/abi/SecretVault.ts";
import { taskMarketAbi } from "../../src/chain/abi/TaskMarket.ts";
import type { Reader } from "./chain.ts";
import type { DashboardConfig, DashboardDeployment } from "./config.ts";
import { BlockTimes, EventLog } from "./data/events.ts";

export type ContractKey = "registry" | "market" | "collaborations" | "pipelines" | "grants" | "vault";

export const contractNames: Record<ContractKey, string> = {
  registry: "EnclaveRegistry",
  market: "TaskMarket",
  collaborations: "Collaborations",
  pipelines: "Pipelines",
  grants: "Grants",
  vault: "SecretVault",
};

const abis: Record<ContractKey, Abi> = {
  registry: enclaveRegistryAbi,
  market: taskMarketAbi,
  collaborations: collaborationsAbi,
  pipelines: pipelinesAbi,
  grants: grantsAbi,
  vault: secretVaultAbi,
};

export class App {
  readonly config: DashboardConfig;
  readonly client: Reader;
  readonly live: boolean;
  readonly deployment: DashboardDeployment;
  readonly fromBlock: bigint;
  readonly times: BlockTimes;
  readonly chainId: number;
  /** The newest block the page has seen. */
  head = 0n;
  readonly #logs = new Map<ContractKey, EventLog>();

  constructor(o: { config: DashboardConfig; client: Reader; live: boolean; deployment: DashboardDeployment; chainId: number }) {
    this.config = o.config;
    this.client = o.client;
    this.live = o.live;
    this.deployment = o.deployment;
    this.chainId = o.chainId;
    this.fromBlock = BigInt(o.deployment.deployBlock);
    this.times = new BlockTimes(o.client);
  }

  address(key: ContractKey): Address | undefined {
    return this.deployment[key];
  }

  /** The contract's event log, read up to the head; undefined when the deployment names no such contract. */
  async events(key: ContractKey): Promise<EventLog | undefined> {
    const address = this.address(key);
    if (!address) return undefined;
    let log = this.#logs.get(key);
    if (!log) {
      log = new EventLog(this.client, address, abis[key], this.fromBlock);
      this.#logs.set(key, log);
    }
    await log.refresh(this.head);
    return log;
  }

  /** A JSON answer of the serving process's API (verification, node health). */
  async api<T>(path: string): Promise<T> {
    const res = await fetch(`./api/${path}`, { cache: "no-store" });
    const body = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (!res.ok) throw new Error(body.error ?? `the dashboard's server answered api/${path} with HTTP ${res.status}`);
    return body;
  }
}

export type Page = (app: App, param: string | undefined) => Promise<HTMLElement>;
