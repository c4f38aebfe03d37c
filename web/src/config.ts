/**
 * What the serving process tells the page (GET config.json): where the chain
 * and IPFS are, the deployment it was given (or why that is unusable), and
 * the policy it verifies evidence against. The page holds no key.
 */
import type { Address } from "viem";

export interface DashboardDeployment {
  chainId?: number;
  registry: Address;
  market: Address;
  deployBlock: string;
  testToken?: Address;
  collaborations?: Address;
  pipelines?: Address;
  grants?: Address;
  vault?: Address;
}

export interface DashboardConfig {
  rpcUrl: string;
  wsUrl?: string;
  ipfsUrl: string;
  deployment: DashboardDeployment | null;
  /** Why there is no deployment (a bad file, none given). */
  deploymentProblem?: string;
  deploymentSource?: string;
  /** The policy the serving process verifies evidence and provenance against; null: it verifies nothing. */
  policy: { name: string; digest: string; allowSimulation: boolean } | null;
  /** How many node health endpoints the serving process relays (api/nodes). */
  nodeCount: number;
}

export async function loadConfig(): Promise<DashboardConfig> {
  let res: Response;
  try {
    res = await fetch("./config.json", { cache: "no-store" });
  } catch (error) {
    throw new Error(`the dashboard's own server does not answer (${(error as Error).message}); is 'cloister dashboard' or the devnet still running?`);
  }
  if (!res.ok) throw new Error(`the dashboard's server answered config.json with HTTP ${res.status}`);
  return (await res.json()) as DashboardConfig;
}
