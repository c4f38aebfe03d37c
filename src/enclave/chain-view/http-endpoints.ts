/**
 * Chain endpoints named by a data owner (sealed with its pipeline or its
 * granted dataset, so the host cannot change them) and the chain view over
 * them: the checkpoint header from a quorum of them, every read proved
 * against it. The enclave process reaches them with fetch (CA-validated TLS
 * for https), not through the relay with a pin, which would need pins for
 * RPC providers (not built).
 */
import { ChainView } from "./chain-view.ts";
import { QuorumHeaderSource } from "./quorum.ts";
import type { ChainEndpoint } from "./rpc.ts";

export interface OwnerChainViewConfig {
  endpoints: readonly string[];
  /** How many endpoints must agree on the checkpoint (a majority). */
  quorum: number;
  /** Blocks below the quorum's head the checkpoint stays. */
  finalityDepth: number;
}

/** A JSON-RPC endpoint over HTTP(S) POST. */
export function httpEndpoint(name: string, url: string): ChainEndpoint {
  let id = 0;
  return {
    name,
    rpc: {
      async request({ method, params }: { method: string; params?: readonly unknown[] | object }) {
        const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] }) });
        const body = (await response.json()) as { result?: unknown; error?: { message?: string } };
        if (body.error) throw new Error(`${method}: ${body.error.message ?? "error"}`);
        return body.result;
      },
    },
  };
}

/** The chain view over the owner's endpoints: headers from their quorum, reads from the first. */
export function ownerChainView(config: OwnerChainViewConfig, chainId: number): ChainView {
  const endpoints = config.endpoints.map((url, i) => httpEndpoint(`endpoint ${i + 1} (${new URL(url).host})`, url));
  return new ChainView({ headers: new QuorumHeaderSource({ chainId, endpoints, quorum: config.quorum, finalityDepth: config.finalityDepth }), data: endpoints[0]! });
}
