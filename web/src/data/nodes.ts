/** The nodes' health and metrics, as the serving process relays them (api/nodes): nodes serve them to localhost only, without CORS. */
import type { App } from "../app.ts";

export interface NodeReport {
  index: number;
  url: string;
  ok: boolean;
  error?: string;
  health?: {
    status: string;
    reason?: string;
    enclave: { signer: string; simulated: boolean; up: boolean };
    checkpointBlock: string | null;
    lastCrawlAgeMs: number | null;
    registration: { state: string; expiry: string | null; secondsToExpiry: number | null; failures: number; lastError?: string };
  };
  /** Unlabelled samples, name → value, and the labelled ones as `name{labels}`. */
  metrics?: Record<string, number>;
}

export async function nodeReports(app: App): Promise<NodeReport[]> {
  if (app.config.nodeCount === 0) return [];
  return (await app.api<{ nodes: NodeReport[] }>("nodes")).nodes;
}
