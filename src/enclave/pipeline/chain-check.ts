/**
 * The pipeline's chain state proved inside the enclave (src/enclave/chain-view/):
 * when the owner names JSON-RPC endpoints in the pipeline (sealed, so the host
 * cannot change them), the enclave takes the checkpoint header from k of them
 * and proves `pipelines[id]` (owner word, digest, cursor) with eth_getProof
 * against it, instead of believing the host's claim. A run whose
 * cursor-before is not the cursor the chain holds is then refused before the
 * source is read: an old cursor replayed by the host is caught here, not only
 * by the destination's run marker.
 *
 * The endpoints are reached from the enclave process with fetch (CA-validated
 * TLS for https): not through the relay with a pin, which would need pins for
 * RPC providers (not built).
 */
import type { Address, Hex } from "viem";
import { ChainView } from "../chain-view/chain-view.ts";
import { QuorumHeaderSource } from "../chain-view/quorum.ts";
import type { ChainEndpoint } from "../chain-view/rpc.ts";
import { mappingSlot, slotPlus } from "../chain-view/slots.ts";
import { decodePipelineOwnerWord, pipelinesStorage } from "../../protocol/pipelines.ts";

export interface ChainViewConfig {
  endpoints: string[];
  quorum: number;
  finalityDepth: number;
}

function jsonRpcEndpoint(url: string, index: number): ChainEndpoint {
  let id = 0;
  return {
    name: `endpoint ${index + 1} (${new URL(url).host})`,
    rpc: {
      async request({ method, params }: { method: string; params?: readonly unknown[] | object }) {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] }) });
        const body = (await res.json()) as { result?: unknown; error?: { message?: string } };
        if (body.error) throw new Error(`${method}: ${body.error.message ?? "error"}`);
        return body.result;
      },
    } as ChainEndpoint["rpc"],
  };
}

export interface ProvenPipeline {
  block: bigint;
  exists: boolean;
  retired: boolean;
  pipelineDigest: Hex;
  cursor: Hex;
}

export async function provePipelineState(config: ChainViewConfig, chainId: bigint, contract: Address, pipelineId: bigint): Promise<ProvenPipeline> {
  const endpoints = config.endpoints.map(jsonRpcEndpoint);
  const view = new ChainView({ headers: new QuorumHeaderSource({ chainId: Number(chainId), endpoints, quorum: config.quorum, finalityDepth: config.finalityDepth }), data: endpoints[0]! });
  const block = await view.header();
  const base = mappingSlot({ type: "uint256", value: pipelineId }, pipelinesStorage.pipelinesSlot);
  const word = (offset: bigint) => view.read({ address: contract, slot: slotPlus(base, offset), blockTag: block }).then((w) => w.value);
  const [owner, digest, cursor] = await Promise.all([word(pipelinesStorage.words.owner), word(pipelinesStorage.words.pipelineDigest), word(pipelinesStorage.words.cursor)]);
  const decoded = decodePipelineOwnerWord(owner);
  return { block: block.number, exists: BigInt(owner) !== 0n, retired: decoded.retired, pipelineDigest: digest, cursor };
}
