/**
 * Release after record (docs/cleanroom.md, "maxRuns, the budget and delivery"): a compute enclave whose party
 * names chain endpoints keeps a run's result inside (the sealed result for a party recipient; the delivery
 * itself for a table or an endpoint) until its host has recorded the run, and releases it only once it has
 * proved, at the checkpoint a quorum of the party's endpoints chose, that `runResults[id][runId]` holds this
 * result's digest. A host that does not record gets nothing; a host that computes one pending run twice gets
 * the one result the chain recorded (the other is dropped: COLLAB_RUN_NOT_RECORDED). A result not released
 * within HOLD_MS is dropped too.
 */
import type { Hex } from "viem";
import { collaborationsStorage as layout } from "../../../protocol/collaboration.ts";
import type { CollabChainView } from "../../../protocol/collab-run.ts";
import type { ChainView } from "../../chain-view/chain-view.ts";
import { ownerChainView } from "../../chain-view/http-endpoints.ts";
import { nestedMappingSlot } from "../../chain-view/slots.ts";
import type { CollabProvedAt } from "./chain-state.ts";
import { CollabJobError } from "./errors.ts";

/** How long a result waits inside for its run's record. */
export const HOLD_MS = 600_000;

export interface ReleaseRequest {
  chainId: bigint;
  contract: Hex;
  collaborationId: bigint;
  runId: number;
  /** The result digest the run was signed with (the Run's resultDigest). */
  resultDigest: Hex;
}

interface Held {
  chainView: CollabChainView;
  /** Delivers (a table, an endpoint) or hands back the sealed result; called once. */
  release: () => Promise<Uint8Array>;
  timer: NodeJS.Timeout;
}

const held = new Map<string, Held>();

const keyOf = (r: ReleaseRequest) => `${r.chainId}:${r.contract.toLowerCase()}:${r.collaborationId}:${r.runId}:${r.resultDigest.toLowerCase()}`;

/** Keeps a computed run's result inside until its record is proved (or HOLD_MS passes). */
export function holdResult(r: ReleaseRequest, chainView: CollabChainView, release: () => Promise<Uint8Array>): void {
  const key = keyOf(r);
  const timer = setTimeout(() => held.delete(key), HOLD_MS);
  timer.unref();
  held.set(key, { chainView, release, timer });
}

/**
 * Proves that the run was recorded with this result and releases it (once). Refuses COLLAB_RUN_PENDING while the
 * checkpoint shows no record of the run yet (the result stays held: ask again once the record is `finalityDepth`
 * blocks deep), COLLAB_RUN_NOT_RECORDED when the chain recorded another result for it or none is held (dropped,
 * released already, or never computed here).
 */
export async function releaseResult(r: ReleaseRequest): Promise<{ bytes: Uint8Array; provedAt: CollabProvedAt }> {
  const key = keyOf(r);
  const entry = held.get(key);
  if (!entry) throw new CollabJobError("COLLAB_RUN_NOT_RECORDED", `no result of run ${r.runId} with digest ${r.resultDigest} is held here: it was released already, dropped, or not computed by this enclave`);
  let block: Awaited<ReturnType<ChainView["header"]>>;
  let recorded: Hex;
  try {
    const view = ownerChainView(entry.chainView, Number(r.chainId));
    block = await view.header();
    const slot = nestedMappingSlot([{ type: "uint256", value: r.collaborationId }, { type: "uint256", value: BigInt(r.runId) }], layout.runResultsSlot);
    recorded = (await view.read({ address: r.contract, slot, blockTag: block })).value;
  } catch (error) {
    throw new CollabJobError("COLLAB_CHAIN_UNPROVEN", `the run's record could not be proved from the compute party's chain endpoints (${(error as Error).message}); the result stays held: ask again`, { cause: error });
  }
  const provedAt: CollabProvedAt = { number: String(block.number), hash: block.hash.toLowerCase() as Hex, timestamp: String(block.timestamp), chosenBy: "party-endpoints" };
  // Another call for the same result may have released or dropped it while this one proved the record.
  if (held.get(key) !== entry) throw new CollabJobError("COLLAB_RUN_NOT_RECORDED", `the result of run ${r.runId} with digest ${r.resultDigest} was released or dropped while its record was proved`);
  if (BigInt(recorded) === 0n) {
    throw new CollabJobError("COLLAB_RUN_PENDING", `run ${r.runId} is not recorded at block ${block.number}: the result is released once the record is proved (record the run, wait finalityDepth blocks, ask again)`, { details: { block: provedAt.number } });
  }
  held.delete(key);
  clearTimeout(entry.timer);
  if (recorded.toLowerCase() !== r.resultDigest.toLowerCase()) {
    throw new CollabJobError("COLLAB_RUN_NOT_RECORDED", `run ${r.runId} is recorded at block ${block.number} with another result (${recorded}): this result is dropped, never released`, { details: { block: provedAt.number } });
  }
  return { bytes: await entry.release(), provedAt };
}
