/**
 * The page's own chain reader: viem over the chain's WebSocket when the
 * network gives one (new blocks pushed), else over HTTP (polled). Read-only:
 * there is no account and no wallet here.
 */
import { createPublicClient, http, webSocket, type PublicClient } from "viem";
import type { DashboardConfig } from "./config.ts";

export type Reader = PublicClient;

export function createReader(config: DashboardConfig): { client: Reader; live: boolean } {
  const transport = config.wsUrl ? webSocket(config.wsUrl, { retryCount: 3, reconnect: { attempts: 1000, delay: 1000 } }) : http(config.rpcUrl, { retryCount: 1 });
  return { client: createPublicClient({ transport, pollingInterval: 2000 }) as Reader, live: config.wsUrl !== undefined };
}
