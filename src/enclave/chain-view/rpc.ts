/**
 * How the chain view reaches an Ethereum JSON-RPC endpoint: an EIP-1193-like
 * `request` function. Inside an enclave it is a client whose TLS terminates in
 * the enclave (the network helper builds it); in tests, an in-process chain.
 * Every answer is untrusted: callers parse it and verify it.
 */
import type { Eip1193Provider } from "../../chain/eip1193.ts";
import { ChainViewError } from "./errors.ts";

export type ChainRpc = Eip1193Provider;

/** A named endpoint: the name appears in errors and quorum reports, never a credential. */
export interface ChainEndpoint {
  name: string;
  rpc: ChainRpc;
}

/** One JSON-RPC call, failed with RPC_FAILED after `timeoutMs` or on the endpoint's error. */
export async function call(endpoint: ChainEndpoint, method: string, params: readonly unknown[], timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChainViewError("RPC_FAILED", `${endpoint.name} did not answer ${method} within ${timeoutMs} ms`, { details: { endpoint: endpoint.name, method } })), timeoutMs);
  });
  try {
    return await Promise.race([endpoint.rpc.request({ method, params }), timeout]);
  } catch (error) {
    if (error instanceof ChainViewError) throw error;
    throw new ChainViewError("RPC_FAILED", `${endpoint.name} failed ${method}`, { cause: error, details: { endpoint: endpoint.name, method } });
  } finally {
    clearTimeout(timer);
  }
}

export function blockTagOf(number: bigint): string {
  return `0x${number.toString(16)}`;
}
