/**
 * The pipeline's chain state proved inside the enclave (src/enclave/chain-view/):
 * when the owner names JSON-RPC endpoints in the pipeline (sealed, so the host
 * cannot change them), the enclave takes the checkpoint header from k of them
 * and proves `pipelines[id]` (owner word, digest, cursor) with eth_getProof
 * against it, instead of believing the host's claim. A run whose
 * cursor-before is not the cursor the chain holds is then refused before the
 * source is read: an old cursor replayed by the host is caught here, not only
 * by the destination's run marker.
 * How the endpoints are reached: chain-view/http-endpoints.ts.
 */
import type { Address, Hex } from "viem";
import { ownerChainView, type OwnerChainViewConfig } from "../chain-view/http-endpoints.ts";
import { mappingSlot, slotPlus } from "../chain-view/slots.ts";
import { decodePipelineOwnerWord, pipelinesStorage } from "../../protocol/pipelines.ts";

export interface ProvenPipeline {
  block: bigint;
  exists: boolean;
  retired: boolean;
  pipelineDigest: Hex;
  cursor: Hex;
}

export async function provePipelineState(config: OwnerChainViewConfig, chainId: bigint, contract: Address, pipelineId: bigint): Promise<ProvenPipeline> {
  const view = ownerChainView(config, Number(chainId));
  const block = await view.header();
  const base = mappingSlot({ type: "uint256", value: pipelineId }, pipelinesStorage.pipelinesSlot);
  const word = (offset: bigint) => view.read({ address: contract, slot: slotPlus(base, offset), blockTag: block }).then((w) => w.value);
  const [owner, digest, cursor] = await Promise.all([word(pipelinesStorage.words.owner), word(pipelinesStorage.words.pipelineDigest), word(pipelinesStorage.words.cursor)]);
  const decoded = decodePipelineOwnerWord(owner);
  return { block: block.number, exists: BigInt(owner) !== 0n, retired: decoded.retired, pipelineDigest: digest, cursor };
}
